package shard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// State is a game database's state in the directory.
type State string

// The states. Only StateOpen databases receive new users; every state but
// read_only serves reads and writes of the users it already has.
const (
	// StateOpen: serves its users and receives new ones.
	StateOpen State = "open"
	// StateClosed: serves its users, receives no new ones. Allocate sets it
	// when the key range is used up.
	StateClosed State = "closed"
	// StateReadOnly: Router.DB and Router.Tx refuse its users with
	// ErrReadOnly; Router.ReadDB still serves them (maintenance, repair).
	StateReadOnly State = "read_only"
	// StateDraining: serves its users, receives no new ones; an operator is
	// moving users off it before retiring it (unlike closed, which means
	// full).
	StateDraining State = "draining"
)

// Valid reports whether s is one of the four states.
func (s State) Valid() bool {
	switch s {
	case StateOpen, StateClosed, StateReadOnly, StateDraining:
		return true
	}
	return false
}

// Database is one game database in the directory: the talk's columns (server
// id, world id, db id, db name, host, port, user count, description), the
// user-key range it owns, its state and weight, and what is needed to
// connect to it and its replicas.
//
// Connecting: when DSN is set it is used as is (SQLite files, or a studio
// that keeps full DSNs in the directory). When DSN is empty the DSN is formed
// from Config.DSNTemplate by replacing {host}, {port} and {db} with Host,
// Port and Name — so credentials live in the servers' configuration, not in
// the common database that operators' tools read.
type Database struct {
	ID       int    `json:"db_id"`          // unique, positive
	ServerID int    `json:"server_id"`      // the talk's serverID (free use)
	WorldID  int    `json:"world_id"`       // the talk's worldID (free use)
	Name     string `json:"db_name"`        // database (schema) name, or SQLite file
	Host     string `json:"host,omitempty"` // the talk's ip; {host} in Config.DSNTemplate
	Port     int    `json:"port,omitempty"` // {port} in Config.DSNTemplate
	Driver   string `json:"driver"`         // database/sql driver name: "mysql", "sqlite"
	DSN      string `json:"dsn,omitempty"`  // explicit DSN; empty = Config.DSNTemplate
	// Replicas are read replicas: "host:port" entries formed through
	// Config.DSNTemplate when DSN is empty, full DSNs when DSN is set.
	Replicas []string `json:"replicas,omitempty"`
	// FirstKey is the database's first user key (positive).
	FirstKey int64 `json:"first_key"`
	// LastKey is its last user key (inclusive, >= FirstKey).
	LastKey int64 `json:"last_key"`
	// NextKey is the next key Allocate hands out: FirstKey when 0,
	// LastKey+1 when the range is used up.
	NextKey int64 `json:"next_key,omitempty"`
	// UserCount is how many keys Allocate has handed out here (with
	// AccountsConfig.KeyBlock: reserved, including unused keys of blocks).
	UserCount   int64  `json:"user_count,omitempty"`
	Weight      int    `json:"weight,omitempty"`      // allocation weight; 0 means 1
	State       State  `json:"state,omitempty"`       // empty means open
	Description string `json:"description,omitempty"` // the talk's desc (free text)
	UpdatedAt   int64  `json:"updated_at,omitempty"`  // unix ms of the last routing change
}

// Contains reports whether key is in d's range.
func (d *Database) Contains(key int64) bool { return key >= d.FirstKey && key <= d.LastKey }

func (d *Database) normalize() {
	if d.State == "" {
		d.State = StateOpen
	}
	if d.Weight <= 0 {
		d.Weight = 1
	}
	if d.NextKey == 0 {
		d.NextKey = d.FirstKey
	}
}

// validate checks one entry.
func (d *Database) validate() error {
	switch {
	case d.ID <= 0:
		return invalidf("db_id %d must be positive", d.ID)
	case d.FirstKey <= 0 || d.LastKey < d.FirstKey:
		return invalidf("db %d: key range %d..%d (keys must be positive, first <= last)", d.ID, d.FirstKey, d.LastKey)
	case d.NextKey < d.FirstKey || d.NextKey > d.LastKey+1:
		return invalidf("db %d: next_key %d outside %d..%d+1", d.ID, d.NextKey, d.FirstKey, d.LastKey)
	case !d.State.Valid():
		return invalidf("db %d: state %q", d.ID, d.State)
	case d.Driver == "":
		return invalidf("db %d: driver is empty", d.ID)
	case d.Name == "" && d.DSN == "":
		return invalidf("db %d: neither db_name nor dsn", d.ID)
	}
	return nil
}

// ValidateDirectory checks a directory's entries: each entry valid, database
// ids unique and key ranges disjoint. It normalizes zero State, Weight and
// NextKey in place.
func ValidateDirectory(dbs []Database) error {
	ids := make(map[int]bool, len(dbs))
	for i := range dbs {
		dbs[i].normalize()
		if err := dbs[i].validate(); err != nil {
			return err
		}
		if ids[dbs[i].ID] {
			return invalidf("duplicate db_id %d", dbs[i].ID)
		}
		ids[dbs[i].ID] = true
	}
	sorted := slices.Clone(dbs)
	slices.SortFunc(sorted, func(a, b Database) int { return cmpInt64(a.FirstKey, b.FirstKey) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].FirstKey <= sorted[i-1].LastKey {
			return invalidf("key ranges of db %d and db %d overlap", sorted[i-1].ID, sorted[i].ID)
		}
	}
	return nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Directory lists the game databases. Implementations: *SQLDirectory (the
// table in the common database) and *StaticDirectory (a Go value or a JSON
// file).
type Directory interface {
	// Databases returns every database in the directory.
	Databases(ctx context.Context) ([]Database, error)
	// Version returns a value that changes whenever an entry is added or
	// removed or its routing fields change (so the Router reloads only
	// then). It is cheaper than Databases.
	Version(ctx context.Context) (string, error)
}

// StaticDirectory is a fixed directory: a Go value or a JSON file. It never
// changes, so a Router over it never reloads.
type StaticDirectory struct {
	dbs []Database
}

var _ Directory = (*StaticDirectory)(nil)

// NewStaticDirectory checks dbs (see ValidateDirectory) and returns a
// directory over a copy of them.
func NewStaticDirectory(dbs []Database) (*StaticDirectory, error) {
	c := slices.Clone(dbs)
	for i := range c {
		c[i].Replicas = slices.Clone(c[i].Replicas)
	}
	if err := ValidateDirectory(c); err != nil {
		return nil, err
	}
	return &StaticDirectory{dbs: c}, nil
}

// ReadStaticDirectory reads a JSON array of Database objects (the json tags
// on Database name the fields) from r.
func ReadStaticDirectory(r io.Reader) (*StaticDirectory, error) {
	dec := json.NewDecoder(io.LimitReader(r, 16<<20))
	dec.DisallowUnknownFields()
	var dbs []Database
	if err := dec.Decode(&dbs); err != nil {
		return nil, &Error{Kind: ErrInvalid, Err: fmt.Errorf("directory JSON: %w", err)}
	}
	return NewStaticDirectory(dbs)
}

// LoadStaticDirectory is ReadStaticDirectory on the file at path.
func LoadStaticDirectory(path string) (*StaticDirectory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	defer f.Close()
	return ReadStaticDirectory(f)
}

// Databases implements Directory.
func (s *StaticDirectory) Databases(context.Context) ([]Database, error) {
	out := slices.Clone(s.dbs)
	for i := range out {
		out[i].Replicas = slices.Clone(out[i].Replicas)
	}
	return out, nil
}

// Version implements Directory; a static directory's version never changes.
func (s *StaticDirectory) Version(context.Context) (string, error) { return "static", nil }

// expandDSN forms a DSN from template for host, port and db.
func expandDSN(template, host string, port int, db string) string {
	return strings.NewReplacer("{host}", host, "{port}", strconv.Itoa(port), "{db}", db).Replace(template)
}

// DSNs returns the primary and replica DSNs of d: d.DSN and d.Replicas as
// they are when d.DSN is set, otherwise formed from template (see Database).
func (d *Database) DSNs(template string) (primary string, replicas []string, err error) {
	if d.DSN != "" {
		return d.DSN, slices.Clone(d.Replicas), nil
	}
	if template == "" {
		return "", nil, invalidf("db %d has no dsn and Config.DSNTemplate is empty", d.ID)
	}
	primary = expandDSN(template, d.Host, d.Port, d.Name)
	for _, r := range d.Replicas {
		host, portS, ok := strings.Cut(r, ":")
		port, perr := strconv.Atoi(portS)
		if !ok || perr != nil {
			return "", nil, invalidf("db %d: replica %q is not host:port", d.ID, r)
		}
		replicas = append(replicas, expandDSN(template, host, port, d.Name))
	}
	return primary, replicas, nil
}
