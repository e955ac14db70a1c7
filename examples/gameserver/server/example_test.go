package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/server"
	"github.com/madang-io/madang/protocol"
)

// The embedded game server in-process, played through the Go client: a
// guest login, the player, a purchase with gems.
func Example() {
	dir, _ := os.MkdirTemp("", "gameserver-example")
	defer os.RemoveAll(dir)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	srv, err := server.New(ctx, server.Config{DataDir: dir, XORKey: "example-key"}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, io.Discard) }()
	defer func() { stop(); <-done }()

	c, _ := protocol.NewClient(protocol.ClientConfig{
		URL:   "http://" + ln.Addr().String() + protocol.DefaultHTTPPath,
		Codec: protocol.Config{XORKey: []byte("example-key")}, Mode: protocol.ModeXOR,
	})
	var login game.LoginResult
	if _, err := c.Call(ctx, game.CmdGuestLogin, game.GuestLogin{DeviceID: "my-phone", Platform: "android"}, &login); err != nil {
		fmt.Println(err)
		return
	}
	c.SetSession(login.Token, nil)
	fmt.Println("user", login.UserKey, "new", login.NewUser)

	var p game.Player
	_, _ = c.Call(ctx, game.CmdLoad, nil, &p)
	fmt.Println("gold", p.Gold, "gems", p.Gems, "stamina", p.Stamina.Current)

	var bought game.BuyResult
	_, _ = c.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, &bought)
	fmt.Println("bought: gold", bought.Gold, "gems", bought.Gems)

	_, err = c.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "no_such_item"}, nil)
	fmt.Println("code", int(protocol.CodeOf(err)), err)
	// Output:
	// user 10000000 new true
	// gold 1000 gems 100 stamina 50
	// bought: gold 2000 gems 90
	// code 1002 unknown item
}
