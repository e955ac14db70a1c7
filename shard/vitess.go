package shard

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
)

// VSchemaOptions says which tables of the game databases a Vitess VSchema
// shards by user key.
type VSchemaOptions struct {
	// Tables maps each sharded table to its user-key column. Required.
	Tables map[string]string
	// Vindex is the name of the vindex in the VSchema. Default "user_key".
	Vindex string
}

// VitessShard is the Vitess shard that takes over one directory database.
type VitessShard struct {
	// Name is the shard's key range in Vitess notation: hex keyspace ids,
	// "start-end" with an empty start for the first shard and an empty end
	// for the last ("-0000000001312d00", "0000000001312d00-").
	Name     string
	DBID     int    // the directory database it takes over
	DBName   string // that database's db_name
	FirstKey int64  // that database's first key
	LastKey  int64  // that database's last key
}

// VitessShards returns one Vitess shard per directory database, sorted by
// key range. With the "numeric" vindex a user key's keyspace id is the key
// as 8 bytes big-endian, so keyspace-id order is key order and each
// database's range becomes one contiguous shard key range: shard i starts
// at database i's FirstKey (the first shard at the minimum) and ends where
// shard i+1 starts (the last at the maximum). Keys in gaps between ranges
// fall into the shard below; the allocator never issues them.
func VitessShards(dbs []Database) ([]VitessShard, error) {
	c := slices.Clone(dbs)
	if err := ValidateDirectory(c); err != nil {
		return nil, err
	}
	if len(c) == 0 {
		return nil, invalidf("vitess: empty directory")
	}
	sort.Slice(c, func(i, j int) bool { return c[i].FirstKey < c[j].FirstKey })
	out := make([]VitessShard, len(c))
	for i, d := range c {
		start, end := "", ""
		if i > 0 {
			start = fmt.Sprintf("%016x", uint64(d.FirstKey))
		}
		if i+1 < len(c) {
			end = fmt.Sprintf("%016x", uint64(c[i+1].FirstKey))
		}
		out[i] = VitessShard{Name: start + "-" + end, DBID: d.ID, DBName: d.Name, FirstKey: d.FirstKey, LastKey: d.LastKey}
	}
	return out, nil
}

type vschema struct {
	Sharded  bool                     `json:"sharded"`
	Vindexes map[string]vschemaVindex `json:"vindexes"`
	Tables   map[string]vschemaTable  `json:"tables"`
}

type vschemaVindex struct {
	Type string `json:"type"`
}

type vschemaTable struct {
	ColumnVindexes []vschemaColumnVindex `json:"column_vindexes"`
}

type vschemaColumnVindex struct {
	Column string `json:"column"`
	Name   string `json:"name"`
}

// WriteVSchema writes the sharded keyspace VSchema (JSON) that lets Vitess
// serve the game databases without changing a user key: every table in
// opts.Tables gets a primary vindex of type "numeric" on its user-key
// column. The shards themselves are not part of a VSchema: create them with
// the names VitessShards returns (one per database, the same data moved or
// replicated into it), and keep the common database (directory, accounts)
// in an unsharded keyspace.
//
// What no longer applies on Vitess: Router (vtgate routes every query; use
// one pool to vtgate), live add through the directory (new shards come from
// Vitess resharding, which splits key ranges, not from new rows), the
// allocation policy's spreading over databases (Allocate still hands out
// unique keys from the directory rows, but a key's shard is fixed by its
// value, so keep ranges aligned with shards or switch to a Vitess
// sequence), Router.ForEach and MigrateAll (use scatter queries and Vitess
// schema migrations), per-database replica DSNs (use vtgate's @replica
// target) and GET_LOCK serialisation of migrations.
func WriteVSchema(w io.Writer, dbs []Database, opts VSchemaOptions) error {
	if _, err := VitessShards(dbs); err != nil {
		return err
	}
	if len(opts.Tables) == 0 {
		return invalidf("vitess: VSchemaOptions.Tables is empty")
	}
	name := opts.Vindex
	if name == "" {
		name = "user_key"
	}
	vs := vschema{Sharded: true, Vindexes: map[string]vschemaVindex{name: {Type: "numeric"}}, Tables: map[string]vschemaTable{}}
	for table, col := range opts.Tables {
		if table == "" || col == "" {
			return invalidf("vitess: empty table or column name")
		}
		vs.Tables[table] = vschemaTable{ColumnVindexes: []vschemaColumnVindex{{Column: col, Name: name}}}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(vs); err != nil {
		return fmt.Errorf("shard: write vschema: %w", err)
	}
	return nil
}
