package gamedata_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/madang-io/madang/examples/gameserver/gamedata"
	"github.com/madang-io/madang/shard/shardtest"
)

func TestHandler(t *testing.T) {
	cat, err := gamedata.Open(context.Background(), gamedata.Default(), gamedata.Config{DB: shardtest.SQLite().NewDB(t), Initial: "1"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.StripPrefix("/ops/data", cat.Handler()))
	t.Cleanup(hs.Close)
	call := func(method, path, body string, want int) gamedata.State {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+"/ops/data"+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st gamedata.State
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %s, want %d", method, path, resp.Status, want)
		}
		if want == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
				t.Fatal(err)
			}
		}
		return st
	}
	if st := call("GET", "/", "", 200); st.Published != "1" || len(st.Versions) != 2 {
		t.Fatalf("state %+v", st)
	}
	if st := call("POST", "/client_versions", `{"client_version":"1.1.0.0","data_version":"2"}`, 200); st.Mappings["1.1.0.0"] != "2" {
		t.Fatalf("mapped: %+v", st)
	}
	call("POST", "/publish", `{"version":"1"}`, 200)
	if st := call("POST", "/publish", `{"version":"2"}`, 200); st.Published != "2" {
		t.Fatalf("published: %+v", st)
	}
	if st := call("POST", "/rollback", `{}`, 200); st.Published != "1" || cat.Current().Version != "1" {
		t.Fatalf("rolled back: %+v", st)
	}
	call("POST", "/rollback", `{}`, http.StatusConflict)
	call("POST", "/publish", `{"version":"9"}`, http.StatusBadRequest)
	call("POST", "/publish", `{"version":`, http.StatusBadRequest)
	if st := call("POST", "/client_versions", `{"client_version":"1.1.0.0","data_version":"0"}`, 200); len(st.Mappings) != 0 {
		t.Fatalf("deleted: %+v", st)
	}
}
