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
			clients[w] = benchClient(b, base, hc)
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
			clients[w] = benchPlayer(b, srv, benchClient(b, base, hc), fmt.Sprintf("emb-buy-%d", w))
		}
		runWorkersOn(b, srv, func(w, i int) error {
			_, err := clients[w].Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "potion_pack"}, nil)
			return err
		})
	})
}
