package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
)

// BenchmarkEmbedded measures issue 17's two requests on an embedded
// (SQLite) server over loopback HTTP, benchWorkers clients at once:
// "login" is a new-device login (auth.guest with a new device id each
// time), "buy" one authenticated write (shop.buy). Reported: requests per
// second and the process's CPU time per request (server and clients share
// the process).
func BenchmarkEmbedded(b *testing.B) {
	b.Run("login", func(b *testing.B) {
		srv := benchServer(b, false)
		base := benchServe(b, srv.Handler())
		hc := benchHTTPClient(b)
		clients := make([]*protocol.Client, benchWorkers)
		for w := range clients {
			c, err := protocol.NewClient(protocol.ClientConfig{
				Transport: &protocol.HTTPTransport{URL: base + protocol.DefaultHTTPPath, Client: hc},
				Codec:     protocol.Config{XORKey: []byte(testXORKey)}, Mode: protocol.ModeXOR,
			})
			if err != nil {
				b.Fatal(err)
			}
			clients[w] = c
		}
		run := fmt.Sprintf("%x", time.Now().UnixNano())
		runWorkersOn(b, srv, func(w, i int) error {
			_, err := clients[w].Call(context.Background(), game.CmdGuestLogin,
				game.GuestLogin{DeviceID: fmt.Sprintf("emb-%s-%d-%d", run, w, i), Platform: "android", ClientVersion: "1.0.0.0"}, nil)
			return err
		})
	})
	b.Run("buy", func(b *testing.B) {
		srv := benchServer(b, false)
		base := benchServe(b, srv.Handler())
		hc := benchHTTPClient(b)
		ctx := context.Background()
		clients := make([]*protocol.Client, benchWorkers)
		for w := range clients {
			c, err := protocol.NewClient(protocol.ClientConfig{
				Transport: &protocol.HTTPTransport{URL: base + protocol.DefaultHTTPPath, Client: hc},
				Codec:     protocol.Config{XORKey: []byte(testXORKey)}, Mode: protocol.ModeXOR,
			})
			if err != nil {
				b.Fatal(err)
			}
			var res game.LoginResult
			if _, err := c.Call(ctx, game.CmdGuestLogin, game.GuestLogin{DeviceID: fmt.Sprintf("emb-buy-%d", w), Platform: "android", ClientVersion: "1.0.0.0"}, &res); err != nil {
				b.Fatal(err)
			}
			c.SetSession(res.Token, nil)
			fundPlayer(b, srv, res.UserKey)
			clients[w] = c
		}
		runWorkersOn(b, srv, func(w, i int) error {
			_, err := clients[w].Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "potion_pack"}, nil)
			return err
		})
	})
}
