// Package gamedata is the example game's static data: versioned tables of
// items, dungeons, the gem shop, in-app purchase products and language
// strings, built by the data tool (examples/datatool) from the designers'
// sheets, validated, and served per client version.
//
// # Sheets and data files
//
// The sheets are the source: sheets/<version>/ holds one CSV file per table
// (the data tool also reads .xlsx workbooks; see examples/datatool/README.md
// for the format, whose header rows give each column's type and
// constraints):
//
//   - items: item_id (key), title
//   - dungeons: dungeon_id (key), title, stamina, gold, exp, loss_exp,
//     max_dps, damage_base, damage_per_level, min_play_ms, max_play_ms
//   - shop: item_id (key), title, gems (price), gold (what it gives)
//   - products: product_id (key, the store's), title, gems, price_micros
//     and currency (list price in millionths of the ISO 4217 currency)
//   - dungeon_rewards, shop_items, product_items: the grants, child tables
//     of dungeons, shop and products: one row per (parent, item_id, count)
//   - strings: key, then one column per language (en, ko, ...); flattened
//     to one String per key and language
//
// The data tool builds each version's sheets into a data file
// (default/data_v<version>.bytes, content-hashed, see package datafile)
// and generates the Go package that loads it (package tables). Both are
// committed and embedded (Default), so `go run ./examples/gameserver`
// needs no build step; a test fails when they are stale. After editing a
// sheet:
//
//	go test ./examples/gameserver/gamedata -run TestSheets -update
//
// (or go run ./examples/datatool build -version 2 -out
// examples/gameserver/gamedata/default/data_v2.bytes -go
// examples/gameserver/gamedata/tables/tables.go -go-package tables
// examples/gameserver/gamedata/sheets/2).
//
// # Validation
//
// The data tool checks what the sheets declare (keys, types, ranges, sizes,
// references: a grant's item_id must be an item) and reports each problem
// as file!sheet!A1. The game's own rules are checked by LoadSet, on every
// load: ids 1..MaxIDLen bytes and unique, amounts 0..MaxAmount, positive
// stamina and damage, min_play_ms ≤ max_play_ms, grants naming existing
// parents and items, at most MaxGrantItems items per grant and each once,
// shop entries and products that give something, ISO 4217 currencies.
// A *ValidationError lists every problem with its table, row and column;
// Build maps them to the sheets' cells (file!sheet!A1, rule "game").
// A data file with a wrong content hash (ErrChecksum), a newer format
// (ErrNewerFormat) or another schema (ErrSchema) is refused before that.
//
// # Versions live at once
//
// A Catalog holds every loaded version. One is published: the version of
// every client version without a mapping. Each client version (the login's
// client_version, protocol.Principal.ClientVersion) can be mapped to its own
// data version, so an old build keeps the tables it understands while new
// builds get new ones; mapping a client version to "0" deletes its mapping.
// Client versions compare numerically, as package liveops compares them
// ("1.2" = "1.2.0" = "1.2.0.0"): a mapping is stored canonical and serves
// every spelling of its version.
// Publish makes a version the published one and Rollback returns to the one
// published before it. The state lives in the common database (tables
// gamedata_published and gamedata_client_versions, created by Open, portable
// SQL for SQLite and MySQL/MariaDB); other servers pick a change up with
// Refresh (or Run, which polls and, with Config.Redis, refreshes at once on
// a change notification published on Config.Channel). Config.OnPublish
// runs after every change so the server can reset the per-user cache
// (session.UserCache.ResetAll).
//
// # Uploads
//
// Upload adds a version at run time: the data file is validated fully
// (LoadSet) before anything is stored, then kept in table
// gamedata_versions with who uploaded it, when, its comment and its content
// hash; every server on the common database loads it at its next refresh.
// Versions are immutable: the same name with other content is
// ErrVersionExists. VersionInfos lists every version, Diff compares two row
// by row and field by field (datafile.Diff), and Handler serves all of it
// as the ops JSON API (the datatool's upload command posts there).
//
// # One version per request
//
// Pin (a protocol.Middleware) pins the state when a request starts;
// ForClientIn and CurrentIn answer from the pinned state, so a publish
// while a request runs never mixes two versions in it.
package gamedata

import (
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/madang-io/madang/examples/datatool/datafile"
	"github.com/madang-io/madang/examples/datatool/sheet"
	"github.com/madang-io/madang/examples/gameserver/gamedata/tables"
)

// Limits of the tables.
const (
	// MaxVersionLen bounds a data version's name.
	MaxVersionLen = 32
	// MaxClientVersionLen bounds a mapped client version (bytes, as given).
	MaxClientVersionLen = 64
	// MaxIDLen bounds item, dungeon, shop and product ids.
	MaxIDLen = 64
	// MaxAmount bounds gold, gems, exp, counts and stamina in the tables.
	MaxAmount = 1_000_000_000
	// MaxGrantItems bounds the items of one grant (shop entry, product,
	// dungeon reward).
	MaxGrantItems = 10
	// MaxRows bounds the rows of one table.
	MaxRows = 10_000
	// MaxFileSize bounds one data file (4 MiB).
	MaxFileSize = 4 << 20
)

// Tables of a version's sheets (and data file).
const (
	TableItems          = "items"
	TableDungeons       = "dungeons"
	TableDungeonRewards = "dungeon_rewards"
	TableShop           = "shop"
	TableShopItems      = "shop_items"
	TableProducts       = "products"
	TableProductItems   = "product_items"
	TableStrings        = "strings"
)

// Errors of a data file, matched with errors.Is on LoadSet's errors (they
// are the generated package tables' sentinels).
var (
	// ErrNotDataFile: the bytes are not a data file.
	ErrNotDataFile = tables.ErrNotDataFile
	// ErrNewerFormat: the file's format is newer than this server reads.
	ErrNewerFormat = tables.ErrNewerFormat
	// ErrChecksum: the file's content hash does not match its body.
	ErrChecksum = tables.ErrChecksum
	// ErrSchema: the file was built from sheets of another schema (other
	// tables or columns): the server must be rebuilt with the code
	// generated from them.
	ErrSchema = tables.ErrSchema
	// ErrCorrupt: the content is malformed.
	ErrCorrupt = tables.ErrCorrupt
	// ErrTooLarge: the data file is larger than MaxFileSize.
	ErrTooLarge = errors.New("gamedata: data file too large")
)

// Item is an item a player can own.
type Item struct {
	ID    string `json:"item_id"`
	Title string `json:"title"`
}

// ItemCount is a number of one item in a grant.
type ItemCount struct {
	ItemID string `json:"item_id"`
	Count  int64  `json:"count"`
}

// Dungeon is a dungeon's row.
type Dungeon struct {
	ID             string      `json:"dungeon_id"`
	Title          string      `json:"title"`
	Stamina        int64       `json:"stamina"`
	Gold           int64       `json:"gold"`
	Exp            int64       `json:"exp"`
	LossExp        int64       `json:"loss_exp"`
	MaxDPS         float64     `json:"max_dps"`
	DamageBase     float64     `json:"damage_base"`
	DamagePerLevel float64     `json:"damage_per_level"`
	MinPlayMs      int64       `json:"min_play_ms"`
	MaxPlayMs      int64       `json:"max_play_ms"`
	Items          []ItemCount `json:"items,omitempty"` // a win's item rewards (dungeon_rewards)
}

// ShopItem is a gem shop entry.
type ShopItem struct {
	ID    string      `json:"item_id"`
	Title string      `json:"title"`
	Gems  int64       `json:"gems"` // price
	Gold  int64       `json:"gold"` // gold it gives
	Items []ItemCount `json:"items,omitempty"`
}

// Product is an in-app purchase product.
type Product struct {
	ID          string      `json:"product_id"` // the store's product id
	Title       string      `json:"title"`
	Gems        int64       `json:"gems"`
	Items       []ItemCount `json:"items,omitempty"`
	PriceMicros int64       `json:"price_micros"` // list price, millionths of Currency
	Currency    string      `json:"currency"`     // ISO 4217, three capital letters
}

// String is one language string.
type String struct {
	Key  string `json:"key"`
	Lang string `json:"lang"`
	Text string `json:"text"`
}

// Set is one data version's validated tables. A Set is immutable once
// loaded: share it freely.
type Set struct {
	Version  string
	Hash     string // the data file's content hash (SHA-256 of its body, hex)
	Items    []Item
	Dungeons []Dungeon
	Shop     []ShopItem
	Products []Product
	Strings  []String

	data     []byte // the data file
	items    map[string]int
	dungeons map[string]int
	shop     map[string]int
	products map[string]int
	strs     map[[2]string]string
}

// Item returns the item with id.
func (s *Set) Item(id string) (Item, bool) {
	i, ok := s.items[id]
	if !ok {
		return Item{}, false
	}
	return s.Items[i], true
}

// Dungeon returns the dungeon with id.
func (s *Set) Dungeon(id string) (Dungeon, bool) {
	i, ok := s.dungeons[id]
	if !ok {
		return Dungeon{}, false
	}
	return s.Dungeons[i], true
}

// ShopItem returns the shop entry with id.
func (s *Set) ShopItem(id string) (ShopItem, bool) {
	i, ok := s.shop[id]
	if !ok {
		return ShopItem{}, false
	}
	return s.Shop[i], true
}

// Product returns the product with id.
func (s *Set) Product(id string) (Product, bool) {
	i, ok := s.products[id]
	if !ok {
		return Product{}, false
	}
	return s.Products[i], true
}

// Text returns the string key in lang, else in "en", else key itself.
func (s *Set) Text(key, lang string) string {
	if t, ok := s.strs[[2]string{key, lang}]; ok {
		return t
	}
	if t, ok := s.strs[[2]string{key, "en"}]; ok {
		return t
	}
	return key
}

// DataFile returns the data file the set was loaded from. Do not modify it.
func (s *Set) DataFile() []byte { return s.data }

// Problem is one failure of the game's rules in a data file.
type Problem struct {
	Version string `json:"version"` // the data version
	Table   string `json:"table"`   // e.g. "shop_items"
	Row     int    `json:"row"`     // 0-based data row of the table; -1 for the whole table
	Column  string `json:"column"`  // the column, "" for the whole row
	Msg     string `json:"msg"`
}

// String returns "version: table row N column: message".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Version + ": " + p.Table)
	if p.Row >= 0 {
		fmt.Fprintf(&b, " row %d", p.Row)
	}
	if p.Column != "" {
		b.WriteString(" " + p.Column)
	}
	b.WriteString(": " + p.Msg)
	return b.String()
}

// ValidationError lists every problem found in a data file.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("gamedata: invalid data")
	for i, p := range e.Problems {
		if i == 20 {
			fmt.Fprintf(&b, "; and %d more", len(e.Problems)-i)
			break
		}
		b.WriteString("; ")
		b.WriteString(p.String())
	}
	return b.String()
}

// ErrBadVersion: a version name outside the rules (1..MaxVersionLen bytes
// of letters, digits, '.', '_' and '-'; "0" is reserved).
var ErrBadVersion = errors.New("gamedata: bad version name")

// ValidVersion reports whether v can name a data version.
func ValidVersion(v string) bool {
	if v == "" || len(v) > MaxVersionLen || v == "0" {
		return false
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

//go:embed default/*.bytes
var defaultFS embed.FS

// Default returns the embedded default source: data files of versions "1"
// (the game's launch tables) and "2" (a sale price on gold_small, an
// elixir pack and a third dungeon), built from sheets/1 and sheets/2, so
// `go run` works without files.
func Default() fs.FS {
	sub, err := fs.Sub(defaultFS, "default")
	if err != nil { // cannot happen: the directory is embedded
		panic(err)
	}
	return sub
}

// Load reads and validates every data file (a name ending in ".bytes") at
// the root of fsys; a version is named by its file's manifest. Every
// problem of every file is reported together in a *ValidationError; a file
// that does not decode (hash, format, schema) fails the load with its
// name.
func Load(fsys fs.FS) (map[string]*Set, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("gamedata: %w", err)
	}
	sets := map[string]*Set{}
	var problems []Problem
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".bytes" {
			continue
		}
		data, err := readFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		s, err := LoadSet(data)
		var ve *ValidationError
		switch {
		case errors.As(err, &ve):
			problems = append(problems, ve.Problems...)
		case err != nil:
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		case sets[s.Version] != nil:
			return nil, fmt.Errorf("gamedata: %s: version %q is in two files", e.Name(), s.Version)
		default:
			sets[s.Version] = s
		}
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	if len(sets) == 0 {
		return nil, errors.New("gamedata: no data files (*.bytes) in the source")
	}
	return sets, nil
}

func readFile(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("gamedata: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, at most %d", ErrTooLarge, name, st.Size(), MaxFileSize)
	}
	return fs.ReadFile(fsys, name)
}

// LoadSet decodes a data file built from the game's sheets and checks the
// game's rules. A file that is not a data file of this schema is refused
// with an error matching ErrNotDataFile, ErrNewerFormat, ErrChecksum,
// ErrSchema or ErrCorrupt; one that breaks the rules with a
// *ValidationError listing every problem.
func LoadSet(data []byte) (*Set, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(data), MaxFileSize)
	}
	d, err := tables.Load(data)
	if err != nil {
		return nil, err // a *tables.LoadError: "gamedata: content hash mismatch: ..."
	}
	// The strings' languages are the columns of table strings: read them
	// from the schema rather than from generated fields, so that adding a
	// language is a sheet change only.
	f, err := datafile.Decode(data)
	if err != nil { // the generated decoder accepted it: not expected
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if !ValidVersion(d.Version) {
		return nil, fmt.Errorf("%w: %q", ErrBadVersion, d.Version)
	}
	s := &Set{Version: d.Version, Hash: hex.EncodeToString(d.Hash[:]), data: data}
	v := &validator{version: d.Version}
	v.build(s, d, f.Book.Table(TableStrings))
	if len(v.problems) > 0 {
		return nil, &ValidationError{Problems: v.problems}
	}
	return s, nil
}

type validator struct {
	version  string
	problems []Problem
}

func (v *validator) add(table string, row int, column, format string, args ...any) {
	v.problems = append(v.problems, Problem{Version: v.version, Table: table, Row: row, Column: column, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) rows(table string, n int) bool {
	if n > MaxRows {
		v.add(table, -1, "", "more than %d rows", MaxRows)
		return false
	}
	return true
}

func (v *validator) id(table string, row int, column, id string, seen map[string]int) {
	if id == "" || len(id) > MaxIDLen {
		v.add(table, row, column, "must be 1..%d bytes", MaxIDLen)
		return
	}
	if prev, dup := seen[id]; dup {
		v.add(table, row, column, "%q already defined in row %d", id, prev)
		return
	}
	seen[id] = row
}

func (v *validator) amount(table string, row int, column string, n int64) {
	if n < 0 || n > MaxAmount {
		v.add(table, row, column, "must be 0..%d", MaxAmount)
	}
}

// grants groups a child table's rows by parent, checking each row.
func (v *validator) grants(table, parentCol string, n int, row func(i int) (parent, item string, count int64), parents, items map[string]int) map[string][]ItemCount {
	out := map[string][]ItemCount{}
	if !v.rows(table, n) {
		return out
	}
	seen := map[[2]string]int{}
	for i := range n {
		parent, item, count := row(i)
		if _, ok := parents[parent]; !ok {
			v.add(table, i, parentCol, "%q is not a row of its parent table", parent)
			continue
		}
		if _, ok := items[item]; !ok {
			v.add(table, i, "item_id", "item %q does not exist in %s", item, TableItems)
			continue
		}
		if count <= 0 || count > MaxAmount {
			v.add(table, i, "count", "must be 1..%d", MaxAmount)
		}
		if prev, dup := seen[[2]string{parent, item}]; dup {
			v.add(table, i, "item_id", "item %q of %q already granted in row %d", item, parent, prev)
			continue
		}
		seen[[2]string{parent, item}] = i
		if len(out[parent]) == MaxGrantItems {
			v.add(table, i, "", "%q grants more than %d items", parent, MaxGrantItems)
			continue
		}
		out[parent] = append(out[parent], ItemCount{ItemID: item, Count: count})
	}
	return out
}

func (v *validator) build(s *Set, d *tables.Data, strs *sheet.Table) {
	s.items, s.dungeons, s.shop, s.products = map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	s.strs = map[[2]string]string{}
	if v.rows(TableItems, len(d.Items)) {
		for i, r := range d.Items {
			v.id(TableItems, i, "item_id", r.ItemID, s.items)
			s.Items = append(s.Items, Item{ID: r.ItemID, Title: r.Title})
		}
	}
	if v.rows(TableDungeons, len(d.Dungeons)) {
		for i, r := range d.Dungeons {
			v.id(TableDungeons, i, "dungeon_id", r.DungeonID, s.dungeons)
			v.amount(TableDungeons, i, "stamina", r.Stamina)
			v.amount(TableDungeons, i, "gold", r.Gold)
			v.amount(TableDungeons, i, "exp", r.Exp)
			v.amount(TableDungeons, i, "loss_exp", r.LossExp)
			if r.Stamina <= 0 {
				v.add(TableDungeons, i, "stamina", "must be positive")
			}
			if !(r.MaxDPS > 0) || !(r.DamageBase > 0) || r.DamagePerLevel < 0 {
				v.add(TableDungeons, i, "", "max_dps and damage_base must be positive, damage_per_level not negative")
			}
			if r.MinPlayMs <= 0 || r.MaxPlayMs < r.MinPlayMs {
				v.add(TableDungeons, i, "max_play_ms", "need 0 < min_play_ms <= max_play_ms")
			}
			s.Dungeons = append(s.Dungeons, Dungeon{ID: r.DungeonID, Title: r.Title, Stamina: r.Stamina, Gold: r.Gold, Exp: r.Exp,
				LossExp: r.LossExp, MaxDPS: r.MaxDPS, DamageBase: r.DamageBase, DamagePerLevel: r.DamagePerLevel,
				MinPlayMs: r.MinPlayMs, MaxPlayMs: r.MaxPlayMs})
		}
	}
	if v.rows(TableShop, len(d.Shop)) {
		for i, r := range d.Shop {
			v.id(TableShop, i, "item_id", r.ItemID, s.shop)
			v.amount(TableShop, i, "gems", r.Gems)
			v.amount(TableShop, i, "gold", r.Gold)
			s.Shop = append(s.Shop, ShopItem{ID: r.ItemID, Title: r.Title, Gems: r.Gems, Gold: r.Gold})
		}
	}
	if v.rows(TableProducts, len(d.Products)) {
		for i, r := range d.Products {
			v.id(TableProducts, i, "product_id", r.ProductID, s.products)
			v.amount(TableProducts, i, "gems", r.Gems)
			if r.PriceMicros <= 0 || r.PriceMicros > 1e12 {
				v.add(TableProducts, i, "price_micros", "must be 1..1e12")
			}
			if !isCurrency(r.Currency) {
				v.add(TableProducts, i, "currency", "must be an ISO 4217 code (three capital letters), not %q", r.Currency)
			}
			s.Products = append(s.Products, Product{ID: r.ProductID, Title: r.Title, Gems: r.Gems, PriceMicros: r.PriceMicros, Currency: r.Currency})
		}
	}
	rewards := v.grants(TableDungeonRewards, "dungeon_id", len(d.DungeonRewards), func(i int) (string, string, int64) {
		r := &d.DungeonRewards[i]
		return r.DungeonID, r.ItemID, r.Count
	}, s.dungeons, s.items)
	for i := range s.Dungeons {
		s.Dungeons[i].Items = rewards[s.Dungeons[i].ID]
	}
	shopItems := v.grants(TableShopItems, "shop_id", len(d.ShopItems), func(i int) (string, string, int64) {
		r := &d.ShopItems[i]
		return r.ShopID, r.ItemID, r.Count
	}, s.shop, s.items)
	for i := range s.Shop {
		it := &s.Shop[i]
		it.Items = shopItems[it.ID]
		if it.Gold == 0 && len(it.Items) == 0 {
			v.add(TableShop, i, "", "%q gives nothing (no gold, no rows in %s)", it.ID, TableShopItems)
		}
	}
	productItems := v.grants(TableProductItems, "product_id", len(d.ProductItems), func(i int) (string, string, int64) {
		r := &d.ProductItems[i]
		return r.ProductID, r.ItemID, r.Count
	}, s.products, s.items)
	for i := range s.Products {
		p := &s.Products[i]
		p.Items = productItems[p.ID]
		if p.Gems == 0 && len(p.Items) == 0 {
			v.add(TableProducts, i, "", "%q gives nothing (no gems, no rows in %s)", p.ID, TableProductItems)
		}
	}
	v.strings(s, strs)
}

// strings flattens table strings (a key column, one column per language)
// to one String per key and language with a text.
func (v *validator) strings(s *Set, t *sheet.Table) {
	if t == nil || t.Key < 0 {
		v.add(TableStrings, -1, "", "the table needs a key column and a column per language")
		return
	}
	if !v.rows(TableStrings, t.NumRows()) {
		return
	}
	key := t.Columns[t.Key]
	for i := range t.NumRows() {
		k := key.Strs[i]
		if k == "" || len(k) > 128 {
			v.add(TableStrings, i, key.Name, "key must be 1..128 bytes")
			continue
		}
		for _, c := range t.Columns {
			if c == key {
				continue
			}
			if c.Type.Kind != sheet.String || c.Type.List || len(c.Name) > 16 {
				v.add(TableStrings, i, c.Name, "a language column must be a string column named by the language (1..16 bytes)")
				continue
			}
			if c.Strs[i] == "" {
				continue // not translated: Text falls back to en
			}
			s.Strings = append(s.Strings, String{Key: k, Lang: c.Name, Text: c.Strs[i]})
			s.strs[[2]string{k, c.Name}] = c.Strs[i]
		}
	}
}

func isCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := range 3 {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

// Build reads a version's sheets (as the data tool reads them, see package
// sheet), checks the game's rules, and returns the data file of version.
// Every problem, the sheets' and the game's, is reported in a
// *sheet.ValidationError with its file!sheet!A1 cell (the game's with rule
// "game").
func Build(version string, inputs ...sheet.Input) ([]byte, *sheet.Book, error) {
	if !ValidVersion(version) {
		return nil, nil, fmt.Errorf("%w: %q", ErrBadVersion, version)
	}
	book, err := sheet.Read(sheet.Options{}, inputs...)
	if err != nil {
		return nil, nil, err
	}
	data, err := datafile.Encode(book, version)
	if err != nil {
		return nil, nil, err
	}
	_, err = LoadSet(data)
	var ve *ValidationError
	if errors.As(err, &ve) {
		return nil, nil, &sheet.ValidationError{Problems: CellProblems(book, ve.Problems)}
	}
	if err != nil {
		return nil, nil, err
	}
	return data, book, nil
}

// RuleGame names the game's rules in the sheet problems of Build.
const RuleGame = "game"

// CellProblems locates problems in the sheets book was read from:
// file!sheet!A1 of the row and column (the row's first cell for a whole
// row, the sheet for a whole table).
func CellProblems(book *sheet.Book, problems []Problem) []sheet.Problem {
	out := make([]sheet.Problem, 0, len(problems))
	for _, p := range problems {
		sp := sheet.Problem{File: p.Version, Sheet: p.Table, Rule: RuleGame, Msg: p.Msg}
		if t := book.Table(p.Table); t != nil {
			sp.File, sp.Sheet = t.File, t.Sheet
			if p.Row >= 0 && p.Row < t.NumRows() {
				col := 1
				if c := t.Column(p.Column); c != nil {
					col = c.SheetCol
				} else if len(t.Columns) > 0 {
					col = t.Columns[0].SheetCol
				}
				sp.Cell = sheet.CellName(col, int(t.Rows[p.Row]))
			}
		}
		out = append(out, sp)
	}
	return out
}

// sortedVersions returns the versions of sets in order.
func sortedVersions(sets map[string]*Set) []string {
	out := make([]string, 0, len(sets))
	for v := range sets {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}
