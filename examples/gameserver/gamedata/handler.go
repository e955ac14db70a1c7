package gamedata

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/madang-io/madang/examples/datatool/datafile"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

// MaxOpsBody bounds an ops request body (64 KiB), except an upload's.
const MaxOpsBody = 64 << 10

// MaxUploadBody bounds an upload's request body: a data file of
// MaxFileSize in base64, and the rest.
const MaxUploadBody = MaxFileSize/3*4 + 8 + MaxOpsBody

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

// DiffEntry is one difference between two data versions, as
// datafile.Diff finds it.
type DiffEntry struct {
	// Kind is "+table", "-table", "+column", "-column", "type" (a
	// column's type changed), "+row", "-row" or "~row" (changed fields).
	Kind  string `json:"kind"`
	Table string `json:"table"`
	// Key is the row's key (rows match by key; "#n", the 1-based
	// position, in a table without a key).
	Key string `json:"key,omitempty"`
	// Column names the column of a column change.
	Column string `json:"column,omitempty"`
	// Fields lists a "~row"'s changed fields, and a "type" change's old
	// and new type.
	Fields []FieldChange `json:"fields,omitempty"`
}

// FieldChange is one changed field (values as text, lists joined by ", ").
type FieldChange struct {
	Column string `json:"column"`
	Old    string `json:"old"`
	New    string `json:"new"`
}

// Diff returns the changes from data version from to version to: tables
// and columns added and removed, rows added, removed and changed field by
// field. ErrUnknownVersion when either is not loaded here.
func (c *Catalog) Diff(from, to string) ([]DiffEntry, error) {
	st := c.st.Load()
	var files [2]*datafile.File
	for i, v := range []string{from, to} {
		s, ok := st.sets[v]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownVersion, v)
		}
		f, err := datafile.Decode(s.data)
		if err != nil { // LoadSet decoded it
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		files[i] = f
	}
	out := []DiffEntry{}
	for _, ch := range datafile.Diff(files[0].Book, files[1].Book) {
		e := DiffEntry{Kind: ch.Kind, Table: ch.Table, Key: ch.Key, Column: ch.Column}
		for _, f := range ch.Fields {
			e.Fields = append(e.Fields, FieldChange{Column: f.Column, Old: f.Old, New: f.New})
		}
		out = append(out, e)
	}
	return out, nil
}

// Upload is the body of an upload (POST /versions).
type Upload struct {
	UploadedBy string `json:"uploaded_by"` // who uploads (required; the ops token is shared)
	Comment    string `json:"comment"`
	Data       []byte `json:"data"` // the data file, base64 in JSON
}

// Handler serves the catalog's operator API as JSON, to be mounted behind
// the ops listener's authentication with http.StripPrefix:
//
//	GET  /                       → State
//	GET  /versions               → {"versions": [VersionInfo]} (the source's, then uploads in order)
//	GET  /versions/{v}/data      → the data file (application/octet-stream)
//	GET  /diff?from=A&to=B       → {"from", "to", "changes": [DiffEntry]}
//	POST /versions               Upload → 201 {"version": VersionInfo, "created": true}
//	                             (200 and "created": false: the same file was uploaded before)
//	POST /publish                {"version"}                         → State
//	POST /rollback               {}                                  → State
//	POST /client_versions        {"client_version", "data_version"}  → State ("0" deletes)
//
// Errors answer {"error": "...", "code": "..."} with the status:
//
//	400 bad_request        a malformed body or query
//	400 unknown_version    no such data version here
//	400 bad_client_version a client version that does not parse
//	400 bad_upload         no uploaded_by, or a comment too long
//	400 invalid            the data file breaks the game's rules: "problems" lists them
//	                       [{"version", "table", "row", "column", "msg"}]
//	400 checksum, newer_format, schema, not_data_file, corrupt
//	                       the data file is refused (content hash mismatch, a newer
//	                       format than this server reads, another schema, ...)
//	409 no_previous        nothing to roll back to
//	409 version_exists     the version was uploaded before with other content
//	413 too_large          the body or data file is too large
//	503 unavailable        the database is down or busy: retry
//	500 internal           a bug
//
// A refused upload stores nothing and changes nothing served.
func (c *Catalog) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { c.reply(w, nil) })
	mux.HandleFunc("GET /versions", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string][]VersionInfo{"versions": c.VersionInfos()})
	})
	mux.HandleFunc("GET /versions/{version}/data", func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.Set(r.PathValue("version"))
		if !ok {
			c.fail(w, fmt.Errorf("%w: %q", ErrUnknownVersion, r.PathValue("version")))
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"data_v%s.bytes\"", s.Version))
		w.Write(s.data)
	})
	mux.HandleFunc("GET /diff", func(w http.ResponseWriter, r *http.Request) {
		from, to := r.URL.Query().Get("from"), r.URL.Query().Get("to")
		if from == "" || to == "" {
			writeError(w, http.StatusBadRequest, "bad_request", "gamedata: diff needs ?from=A&to=B")
			return
		}
		changes, err := c.Diff(from, to)
		if err != nil {
			c.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"from": from, "to": to, "changes": changes})
	})
	mux.HandleFunc("POST /versions", func(w http.ResponseWriter, r *http.Request) {
		var in Upload
		if !decodeLimit(w, r, &in, MaxUploadBody) {
			return
		}
		info, created, err := c.Upload(r.Context(), in.Data, in.UploadedBy, in.Comment)
		if err != nil {
			c.fail(w, err)
			return
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		writeJSON(w, status, map[string]any{"version": info, "created": created})
	})
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
	return decodeLimit(w, r, v, MaxOpsBody)
}

func decodeLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("gamedata: request body larger than %d bytes", limit))
			return false
		}
		writeError(w, http.StatusBadRequest, "bad_request", "gamedata: bad request body: "+err.Error())
		return false
	}
	return true
}

func (c *Catalog) reply(w http.ResponseWriter, err error) {
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c.State())
}

// fail answers err with its status and code (see Handler).
func (c *Catalog) fail(w http.ResponseWriter, err error) {
	var ve *ValidationError
	switch {
	case errors.As(err, &ve):
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error(), "code": "invalid", "problems": ve.Problems})
		return
	case errors.Is(err, ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", err.Error())
		return
	case errors.Is(err, ErrVersionExists):
		writeError(w, http.StatusConflict, "version_exists", err.Error())
		return
	case errors.Is(err, ErrNoPrevious):
		writeError(w, http.StatusConflict, "no_previous", err.Error())
		return
	}
	for _, e := range []struct {
		err  error
		code string
	}{
		{ErrUnknownVersion, "unknown_version"}, {ErrBadClientVersion, "bad_client_version"}, {ErrBadUpload, "bad_upload"},
		{ErrBadVersion, "bad_version"}, {ErrChecksum, "checksum"}, {ErrNewerFormat, "newer_format"}, {ErrSchema, "schema"},
		{ErrNotDataFile, "not_data_file"}, {ErrCorrupt, "corrupt"},
	} {
		if errors.Is(err, e.err) {
			writeError(w, http.StatusBadRequest, e.code, err.Error())
			return
		}
	}
	if protocol.CodeOf(shard.ClassifyError(err)).Retryable() {
		c.log.Warn("gamedata: ops request", "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "gamedata: database unavailable, retry")
		return
	}
	c.log.Error("gamedata: ops request", "err", err)
	writeError(w, http.StatusInternalServerError, "internal", "gamedata: database error")
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": msg, "code": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
