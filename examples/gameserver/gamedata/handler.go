package gamedata

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

// MaxOpsBody bounds an ops request body (64 KiB).
const MaxOpsBody = 64 << 10

// State is the ops view of a Catalog.
type State struct {
	Versions  []string          `json:"versions"`  // loaded, in string order
	Published string            `json:"published"` // the default version
	History   []string          `json:"history"`   // published versions, oldest first, the current last
	Mappings  map[string]string `json:"mappings"`  // client version → data version
}

// State returns the catalog's state.
func (c *Catalog) State() State {
	pub, hist := c.Published()
	if hist == nil {
		hist = []string{}
	}
	return State{Versions: c.Versions(), Published: pub, History: hist, Mappings: c.Mappings()}
}

// Handler serves the catalog's operator API as JSON, to be mounted behind
// the ops listener's authentication with http.StripPrefix:
//
//	GET  /                 → State
//	POST /publish          {"version"}                         → State
//	POST /rollback         {}                                  → State
//	POST /client_versions  {"client_version", "data_version"}  → State ("0" deletes)
//
// Errors answer {"error": "..."}: 400 for an unknown version, a bad client
// version or a malformed body, 409 when there is nothing to roll back to,
// 500 for a database failure.
func (c *Catalog) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { c.reply(w, nil) })
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Version string `json:"version"`
		}
		if decode(w, r, &in) {
			c.reply(w, c.Publish(r.Context(), in.Version))
		}
	})
	mux.HandleFunc("POST /rollback", func(w http.ResponseWriter, r *http.Request) {
		_, err := c.Rollback(r.Context())
		c.reply(w, err)
	})
	mux.HandleFunc("POST /client_versions", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			ClientVersion string `json:"client_version"`
			DataVersion   string `json:"data_version"`
		}
		if decode(w, r, &in) {
			c.reply(w, c.MapClient(r.Context(), in.ClientVersion, in.DataVersion))
		}
	})
	return mux
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxOpsBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "gamedata: bad request body: " + err.Error()})
		return false
	}
	return true
}

func (c *Catalog) reply(w http.ResponseWriter, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, c.State())
	case errors.Is(err, ErrUnknownVersion), errors.Is(err, ErrBadClientVersion):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	case errors.Is(err, ErrNoPrevious):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case protocol.CodeOf(shard.ClassifyError(err)).Retryable():
		c.log.Warn("gamedata: ops request", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "gamedata: database unavailable, retry"})
	default:
		c.log.Error("gamedata: ops request", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "gamedata: database error"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
