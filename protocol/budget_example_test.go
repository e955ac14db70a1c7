package protocol_test

import (
	"context"
	"fmt"

	"github.com/madang-io/madang/protocol"
)

// One DecodeBudget bounds the decoded bodies a whole process holds: give
// the same value to the HTTP handler (HTTPConfig.DecodeBudget) and to the
// realtime hub (realtime.Config.DecodeBudget).
func ExampleDecodeBudget() {
	budget := protocol.NewDecodeBudget(protocol.DecodeBudgetConfig{Bytes: 1 << 20})
	ok := protocol.HandlerFunc(func(context.Context, *protocol.Request) (*protocol.Response, error) {
		return &protocol.Response{}, nil
	})
	if _, err := protocol.NewHTTPHandler(ok, protocol.HTTPConfig{DecodeBudget: budget}); err != nil {
		fmt.Println(err)
		return
	}

	// What a decoder does with a large body: charge it before allocating,
	// give it back when the request is answered.
	lease, err := budget.Acquire(context.Background(), 200<<10, true)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("in use:", budget.Stats().InUse>>10, "KiB")
	lease.Release()
	fmt.Println("in use after:", budget.Stats().InUse)

	// A plain or XOR body larger than their share (a quarter) never fits.
	_, err = budget.Acquire(context.Background(), 300<<10, true)
	fmt.Println("too large:", protocol.CodeOf(err))
	// Output:
	// in use: 200 KiB
	// in use after: 0
	// too large: too_large
}
