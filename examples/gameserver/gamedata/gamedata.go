// Package gamedata is the example game's static data: versioned tables of
// items, dungeons, the gem shop, in-app purchase products and language
// strings, loaded from JSON files, validated, and served per client version.
//
// # Files
//
// A source (an fs.FS: a directory with os.DirFS, or the embedded Default)
// holds one directory per data version, named by the version (1..32 bytes of
// letters, digits, '.', '_' and '-'; "0" is reserved), each with five JSON
// files, every one an array of objects (unknown fields are errors):
//
//   - items.json: {item_id, title}
//   - dungeons.json: {dungeon_id, title, stamina, gold, exp, loss_exp,
//     max_dps, damage_base, damage_per_level, min_play_ms, max_play_ms,
//     items [{item_id, count}]} (items: a win's item rewards)
//   - shop.json: {item_id, title, gems, gold, items [{item_id, count}]}
//   - products.json: {product_id, title, gems, items, price_micros,
//     currency} (in-app purchases: the store's product id, what it grants,
//     and its list price in millionths of the ISO 4217 currency)
//   - strings.json: {key, lang, text}
//
// Validation (Load, LoadVersion) refuses a version with duplicate ids
// (items, dungeons, shop entries, products, (key, lang) strings), references
// that do not resolve (shop and product grants and dungeon rewards must name
// items of items.json), and values out of range; every problem is reported
// with its file and row (0-based index in the array) in a *ValidationError.
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
// Refresh (or Run, which polls). Config.OnPublish runs after every change so
// the server can reset the per-user cache (session.UserCache.ResetAll).
package gamedata

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
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
	// MaxRows bounds the rows of one file.
	MaxRows = 10_000
	// MaxFileSize bounds one file (4 MiB).
	MaxFileSize = 4 << 20
)

// File names of a version's tables.
const (
	FileItems    = "items.json"
	FileDungeons = "dungeons.json"
	FileShop     = "shop.json"
	FileProducts = "products.json"
	FileStrings  = "strings.json"
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
	Items          []ItemCount `json:"items,omitempty"` // a win's item rewards
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
	Items    []Item
	Dungeons []Dungeon
	Shop     []ShopItem
	Products []Product
	Strings  []String

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

// Problem is one validation failure.
type Problem struct {
	File string // e.g. "2/shop.json"
	Row  int    // 0-based index in the file's array; -1 for the whole file
	Msg  string
}

func (p Problem) String() string {
	if p.Row < 0 {
		return p.File + ": " + p.Msg
	}
	return fmt.Sprintf("%s row %d: %s", p.File, p.Row, p.Msg)
}

// ValidationError lists every problem found in a source.
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

// ErrBadVersion: a version name outside the rules (see the package doc).
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

//go:embed default
var defaultFS embed.FS

// Default returns the embedded default source: versions "1" (the game's
// launch tables) and "2" (a sale price on gold_small, an elixir pack and a
// third dungeon), so `go run` works without files.
func Default() fs.FS {
	sub, err := fs.Sub(defaultFS, "default")
	if err != nil { // cannot happen: the directory is embedded
		panic(err)
	}
	return sub
}

// Load reads and validates every version directory at the root of fsys. All
// problems of all versions are reported together in a *ValidationError.
func Load(fsys fs.FS) (map[string]*Set, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("gamedata: %w", err)
	}
	sets := map[string]*Set{}
	var problems []Problem
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if !ValidVersion(e.Name()) {
			problems = append(problems, Problem{File: e.Name(), Row: -1, Msg: ErrBadVersion.Error()})
			continue
		}
		s, err := LoadVersion(fsys, e.Name())
		var ve *ValidationError
		switch {
		case errors.As(err, &ve):
			problems = append(problems, ve.Problems...)
		case err != nil:
			return nil, err
		default:
			sets[s.Version] = s
		}
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	if len(sets) == 0 {
		return nil, errors.New("gamedata: no version directories in the source")
	}
	return sets, nil
}

// LoadVersion reads and validates the version directory named version.
func LoadVersion(fsys fs.FS, version string) (*Set, error) {
	if !ValidVersion(version) {
		return nil, fmt.Errorf("%w: %q", ErrBadVersion, version)
	}
	s := &Set{Version: version}
	l := &loader{fsys: fsys, version: version}
	read(l, FileItems, &s.Items)
	read(l, FileDungeons, &s.Dungeons)
	read(l, FileShop, &s.Shop)
	read(l, FileProducts, &s.Products)
	read(l, FileStrings, &s.Strings)
	if len(l.problems) == 0 {
		l.validate(s)
	}
	if len(l.problems) > 0 {
		return nil, &ValidationError{Problems: l.problems}
	}
	return s, nil
}

type loader struct {
	fsys     fs.FS
	version  string
	problems []Problem
}

func (l *loader) add(file string, row int, format string, args ...any) {
	l.problems = append(l.problems, Problem{File: path.Join(l.version, file), Row: row, Msg: fmt.Sprintf(format, args...)})
}

// read decodes file's array into out (a pointer to a slice), row by row, so
// a bad row is reported with its index.
func read[T any](l *loader, file string, out *[]T) {
	data, err := fs.ReadFile(l.fsys, path.Join(l.version, file))
	if err != nil {
		l.add(file, -1, "%v", err)
		return
	}
	if len(data) > MaxFileSize {
		l.add(file, -1, "larger than %d bytes", MaxFileSize)
		return
	}
	var rows []json.RawMessage
	if err := json.Unmarshal(data, &rows); err != nil {
		l.add(file, -1, "not a JSON array: %v", err)
		return
	}
	if len(rows) > MaxRows {
		l.add(file, -1, "more than %d rows", MaxRows)
		return
	}
	*out = make([]T, 0, len(rows))
	for i, raw := range rows {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var v T
		if err := dec.Decode(&v); err != nil {
			l.add(file, i, "%v", err)
			continue
		}
		*out = append(*out, v)
	}
}

func (l *loader) id(file string, row int, what, id string, seen map[string]int) {
	switch {
	case id == "" || len(id) > MaxIDLen:
		l.add(file, row, "%s must be 1..%d bytes", what, MaxIDLen)
	default:
		if prev, dup := seen[id]; dup {
			l.add(file, row, "%s %q already defined in row %d", what, id, prev)
			return
		}
		seen[id] = row
	}
}

func (l *loader) amount(file string, row int, name string, v int64) {
	if v < 0 || v > MaxAmount {
		l.add(file, row, "%s must be 0..%d", name, MaxAmount)
	}
}

func (l *loader) grant(file string, row int, items []ItemCount, known map[string]int) {
	if len(items) > MaxGrantItems {
		l.add(file, row, "at most %d items", MaxGrantItems)
	}
	seen := map[string]bool{}
	for _, it := range items {
		if _, ok := known[it.ItemID]; !ok {
			l.add(file, row, "item %q does not exist in %s", it.ItemID, FileItems)
		}
		if seen[it.ItemID] {
			l.add(file, row, "item %q listed twice", it.ItemID)
		}
		seen[it.ItemID] = true
		if it.Count <= 0 || it.Count > MaxAmount {
			l.add(file, row, "item %q count must be 1..%d", it.ItemID, MaxAmount)
		}
	}
}

func (l *loader) validate(s *Set) {
	s.items, s.dungeons, s.shop, s.products = map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	s.strs = map[[2]string]string{}
	for i, it := range s.Items {
		l.id(FileItems, i, "item_id", it.ID, s.items)
	}
	for i, d := range s.Dungeons {
		l.id(FileDungeons, i, "dungeon_id", d.ID, s.dungeons)
		l.amount(FileDungeons, i, "stamina", d.Stamina)
		l.amount(FileDungeons, i, "gold", d.Gold)
		l.amount(FileDungeons, i, "exp", d.Exp)
		l.amount(FileDungeons, i, "loss_exp", d.LossExp)
		if d.Stamina <= 0 {
			l.add(FileDungeons, i, "stamina must be positive")
		}
		if !(d.MaxDPS > 0) || !(d.DamageBase > 0) || d.DamagePerLevel < 0 {
			l.add(FileDungeons, i, "max_dps and damage_base must be positive, damage_per_level not negative")
		}
		if d.MinPlayMs <= 0 || d.MaxPlayMs < d.MinPlayMs {
			l.add(FileDungeons, i, "need 0 < min_play_ms <= max_play_ms")
		}
		l.grant(FileDungeons, i, d.Items, s.items)
	}
	for i, it := range s.Shop {
		l.id(FileShop, i, "item_id", it.ID, s.shop)
		l.amount(FileShop, i, "gems", it.Gems)
		l.amount(FileShop, i, "gold", it.Gold)
		if it.Gold == 0 && len(it.Items) == 0 {
			l.add(FileShop, i, "gives nothing")
		}
		l.grant(FileShop, i, it.Items, s.items)
	}
	for i, p := range s.Products {
		l.id(FileProducts, i, "product_id", p.ID, s.products)
		l.amount(FileProducts, i, "gems", p.Gems)
		if p.Gems == 0 && len(p.Items) == 0 {
			l.add(FileProducts, i, "gives nothing")
		}
		if p.PriceMicros <= 0 || p.PriceMicros > 1e12 {
			l.add(FileProducts, i, "price_micros must be 1..1e12")
		}
		if len(p.Currency) != 3 || strings.ToUpper(p.Currency) != p.Currency {
			l.add(FileProducts, i, "currency must be an ISO 4217 code (three capital letters)")
		}
		l.grant(FileProducts, i, p.Items, s.items)
	}
	langs := map[[2]string]int{}
	for i, st := range s.Strings {
		k := [2]string{st.Key, st.Lang}
		switch {
		case st.Key == "" || len(st.Key) > 128 || st.Lang == "" || len(st.Lang) > 16:
			l.add(FileStrings, i, "key must be 1..128 bytes and lang 1..16")
		default:
			if prev, dup := langs[k]; dup {
				l.add(FileStrings, i, "string %q in %q already defined in row %d", st.Key, st.Lang, prev)
				continue
			}
			langs[k] = i
			s.strs[k] = st.Text
		}
	}
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
