package game_test

import (
	"crypto/rand"
	"testing"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
)

// commands are the session commands FuzzCommands sends payloads to.
var commands = []string{
	game.CmdLoad, game.CmdShopBuy, game.CmdMailList, game.CmdMailClaim, game.CmdMailClaimAll,
	game.CmdDungeonStart, game.CmdDungeonFinish, game.CmdRankTop, game.CmdRankMe, game.CmdRankAround,
}

// FuzzCommands sends arbitrary payloads to every command of a logged-in
// player: each is answered with a result code, never an internal error or a
// panic.
func FuzzCommands(f *testing.F) {
	for i, seed := range []string{
		`{}`, `{"item_id":"potion_pack"}`, `{"mail_id":1}`, `{"mail_id":-1}`, `{"dungeon_id":"forest"}`,
		`{"run_id":"x","result":"win","damage":1e300,"play_time_ms":1}`, `{"n":1000000,"cursor":"\u0000"}`,
		`{"n":-3}`, `[`, `null`, `"str"`, `{"mail_id":1e30}`,
	} {
		f.Add(uint8(i), []byte(seed))
	}
	r := newRig(f, backends()[0])
	u := r.login("fuzz")
	f.Fuzz(func(t *testing.T, cmd uint8, payload []byte) {
		req := &protocol.Request{Command: commands[int(cmd)%len(commands)], RequestID: rand.Text(), Payload: payload,
			Principal: &protocol.Principal{UserKey: u}}
		resp := protocol.Dispatch(t.Context(), r.mux, req, nil)
		switch resp.Code {
		case protocol.CodeInternal, protocol.CodeUnavailable, protocol.CodeTimeout:
			t.Fatalf("%s %q: %v %s", req.Command, payload, resp.Code, resp.Message)
		}
	})
}
