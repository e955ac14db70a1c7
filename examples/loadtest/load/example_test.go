package load_test

import (
	"fmt"
	"time"

	"github.com/madang-io/madang/examples/loadtest/load"
)

func ExampleParseMix() {
	mix, err := load.ParseMix("login=1,load=5,purchase=2")
	if err != nil {
		panic(err)
	}
	fmt.Println(mix.Name())
	_, err = load.ParseMix("login=1,raid=3")
	fmt.Println(err)
	// Output:
	// mix(login=1,load=5,purchase=2)
	// load: mix "login=1,raid=3": unknown scenario "raid"
}

func ExampleHistogram() {
	var h load.Histogram
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	fmt.Println(h.Count(), h.Quantile(0.5), h.Quantile(0.99), h.Max())
	// Output:
	// 100 50.175ms 99.327ms 100ms
}

func ExampleCheckTarget() {
	fmt.Println(load.CheckTarget("http://127.0.0.1:8080/v1/rpc", false))
	fmt.Println(load.CheckTarget("http://[::1]:8080/v1/rpc", false))
	fmt.Println(load.CheckTarget("http://game.example.com/v1/rpc", false))
	fmt.Println(load.CheckTarget("http://game.example.com/v1/rpc", true))
	// Output:
	// <nil>
	// <nil>
	// load: target is not loopback (127.0.0.1, ::1, localhost); pass -allow-remote to load a remote server: "game.example.com"
	// <nil>
}
