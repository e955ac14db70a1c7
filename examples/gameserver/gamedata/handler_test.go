package gamedata_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
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

// TestHandlerVersions: upload, list, diff and download through the ops
// API, and the typed refusals (status and code) of bad uploads, which
// store nothing.
func TestHandlerVersions(t *testing.T) {
	cat, err := gamedata.Open(context.Background(), gamedata.Default(), gamedata.Config{DB: shardtest.SQLite().NewDB(t), Initial: "1"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.StripPrefix("/v1/gamedata", cat.Handler()))
	t.Cleanup(hs.Close)
	call := func(method, path string, body any, want int, out any) {
		t.Helper()
		var r io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			r = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, hs.URL+"/v1/gamedata"+path, r)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %s %s, want %d", method, path, resp.Status, data, want)
		}
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				t.Fatalf("%s: %v", data, err)
			}
		}
	}
	v3 := buildVersion(t, "3", map[string]string{"items.csv": "dragon_egg,Dragon egg\n"})
	type errAnswer struct {
		Error    string             `json:"error"`
		Code     string             `json:"code"`
		Problems []gamedata.Problem `json:"problems"`
	}
	bad := bytes.Clone(v3)
	bad[len(bad)-1] ^= 1
	for _, c := range []struct {
		body   any
		status int
		code   string
	}{
		{gamedata.Upload{UploadedBy: "ana", Data: bad}, 400, "checksum"},
		{gamedata.Upload{UploadedBy: "ana", Data: []byte("MDTF")}, 400, "not_data_file"},
		{gamedata.Upload{Data: v3}, 400, "bad_upload"},
		{gamedata.Upload{UploadedBy: "ana", Data: buildVersionBad(t)}, 400, "invalid"},
		{map[string]any{"uploaded_by": "ana", "data": "%%%"}, 400, "bad_request"},
		{gamedata.Upload{UploadedBy: "ana", Data: make([]byte, gamedata.MaxFileSize+1)}, 413, "too_large"},
	} {
		var e errAnswer
		call("POST", "/versions", c.body, c.status, &e)
		if e.Code != c.code || e.Error == "" || (c.code == "invalid") != (len(e.Problems) > 0) {
			t.Errorf("%d %+v, want code %s", c.status, e, c.code)
		}
	}
	var up struct {
		Version gamedata.VersionInfo `json:"version"`
		Created bool                 `json:"created"`
	}
	call("POST", "/versions", gamedata.Upload{UploadedBy: "ana", Comment: "eggs", Data: v3}, http.StatusCreated, &up)
	if !up.Created || up.Version.Version != "3" || up.Version.UploadedBy != "ana" || up.Version.Comment != "eggs" {
		t.Fatalf("upload answer %+v", up)
	}
	call("POST", "/versions", gamedata.Upload{UploadedBy: "ana", Data: v3}, http.StatusOK, &up)
	if up.Created {
		t.Fatal("the same upload created again")
	}
	var list struct {
		Versions []gamedata.VersionInfo `json:"versions"`
	}
	call("GET", "/versions", nil, 200, &list)
	if len(list.Versions) != 3 || list.Versions[0].Source != "embedded" || list.Versions[2].Hash != up.Version.Hash {
		t.Fatalf("versions %+v", list.Versions)
	}
	var diff struct {
		From, To string
		Changes  []gamedata.DiffEntry
	}
	call("GET", "/diff?from=2&to=3", nil, 200, &diff)
	if diff.From != "2" || diff.To != "3" || len(diff.Changes) != 1 || diff.Changes[0].Kind != "+row" || diff.Changes[0].Key != "dragon_egg" {
		t.Fatalf("diff %+v", diff)
	}
	call("GET", "/diff?from=2", nil, 400, nil)
	var e errAnswer
	call("GET", "/diff?from=2&to=9", nil, 400, &e)
	if e.Code != "unknown_version" {
		t.Fatalf("diff unknown: %+v", e)
	}
	resp, err := http.Get(hs.URL + "/v1/gamedata/versions/3/data")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, v3) {
		t.Fatal("downloaded data file differs from the upload")
	}
	var st gamedata.State
	call("POST", "/publish", map[string]string{"version": "3"}, 200, &st)
	if st.Published != "3" || cat.Current().Version != "3" {
		t.Fatalf("state %+v", st)
	}
}
