package game

import (
	"context"
	"sync"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/gamedata"
	"github.com/madang-io/madang/protocol"
)

// Product is an in-app purchase product: the store's product id, what it
// grants and its list price (recorded with the payment in the ledger).
type Product struct {
	ID          string      `json:"product_id"`
	Title       string      `json:"title"`
	Gems        int64       `json:"gems"`
	Items       []ItemCount `json:"items,omitempty"`
	PriceMicros int64       `json:"price_micros"` // millionths of Currency
	Currency    string      `json:"currency"`     // ISO 4217
}

// Products returns the fixed in-app purchase products (the default when
// Config.Data is nil).
func Products() []Product {
	return []Product{
		{ID: "gems_100", Title: "100 gems", Gems: 100, PriceMicros: 990_000, Currency: "USD"},
		{ID: "gems_550", Title: "550 gems", Gems: 550, PriceMicros: 4_990_000, Currency: "USD"},
		{ID: "starter_pack", Title: "Starter pack", Gems: 200, Items: []ItemCount{{ItemID: "elixir", Count: 3}}, PriceMicros: 1_990_000, Currency: "USD"},
	}
}

// Tables is one version of the static data the game's commands read: the
// shop, the dungeons (with their anti-cheat rules), the items and the in-app
// purchase products. Immutable once built.
type Tables struct {
	Version  string
	Items    []ItemDef
	Shop     []Item
	Dungeons []Dungeon
	Products []Product

	items    map[string]ItemDef
	shop     map[string]Item
	dungeons map[string]Dungeon
	products map[string]Product
	checkers map[string]*anticheat.StatChecker
}

// NewTables indexes the given tables (the caller validated them; package
// gamedata does).
func NewTables(version string, items []ItemDef, shop []Item, dungeons []Dungeon, products []Product) *Tables {
	t := &Tables{Version: version, Items: items, Shop: shop, Dungeons: dungeons, Products: products,
		items: map[string]ItemDef{}, shop: map[string]Item{}, dungeons: map[string]Dungeon{},
		products: map[string]Product{}, checkers: map[string]*anticheat.StatChecker{}}
	for _, it := range items {
		t.items[it.ID] = it
	}
	for _, it := range shop {
		t.shop[it.ID] = it
	}
	for _, d := range dungeons {
		t.dungeons[d.ID] = d
		t.checkers[d.ID] = d.Rules()
	}
	for _, p := range products {
		t.products[p.ID] = p
	}
	return t
}

// DefaultTables returns the game's fixed tables (ItemDefs, Catalog,
// Dungeons, Products) as version "builtin": the data when Config.Data is
// nil.
func DefaultTables() *Tables {
	return NewTables("builtin", ItemDefs(), Catalog(), Dungeons(), Products())
}

// ShopItem returns the shop item with id.
func (t *Tables) ShopItem(id string) (Item, bool) { it, ok := t.shop[id]; return it, ok }

// Dungeon returns the dungeon with id.
func (t *Tables) Dungeon(id string) (Dungeon, bool) { d, ok := t.dungeons[id]; return d, ok }

// Item returns the item definition with id.
func (t *Tables) Item(id string) (ItemDef, bool) { it, ok := t.items[id]; return it, ok }

// Product returns the in-app purchase product with id.
func (t *Tables) Product(id string) (Product, bool) { p, ok := t.products[id]; return p, ok }

// DataSource gives the tables of a client version (the session's
// protocol.Principal.ClientVersion). Config.Data; nil means DefaultTables
// for everyone. A nil *Tables from either method also means the defaults.
// The ctx is the request's: a source that pins its state per request
// (gamedata.Catalog.Pin) answers from that state, so one request sees one
// data version from start to end.
type DataSource interface {
	// Tables returns the tables served to clientVersion.
	Tables(ctx context.Context, clientVersion string) *Tables
	// Published returns the tables of the published data version (served
	// to every client version without a mapping of its own). Operators'
	// mail attachments are checked against it.
	Published(ctx context.Context) *Tables
}

// FromCatalog adapts a gamedata.Catalog to a DataSource: each client version
// gets the tables of its mapped data version, else the published one, as of
// the state the request pinned (the Catalog's Pin middleware; the live
// state without one). Each gamedata.Set is converted once.
func FromCatalog(c *gamedata.Catalog) DataSource { return &catalogSource{c: c} }

type catalogSource struct {
	c     *gamedata.Catalog
	cache sync.Map // *gamedata.Set → *Tables
}

func (s *catalogSource) Tables(ctx context.Context, clientVersion string) *Tables {
	return s.of(s.c.ForClientIn(ctx, clientVersion))
}

func (s *catalogSource) Published(ctx context.Context) *Tables { return s.of(s.c.CurrentIn(ctx)) }

func (s *catalogSource) of(set *gamedata.Set) *Tables {
	if t, ok := s.cache.Load(set); ok {
		return t.(*Tables)
	}
	t, _ := s.cache.LoadOrStore(set, TablesOf(set))
	return t.(*Tables)
}

// TablesOf converts a gamedata.Set to the game's Tables.
func TablesOf(set *gamedata.Set) *Tables {
	counts := func(in []gamedata.ItemCount) []ItemCount {
		if len(in) == 0 {
			return nil
		}
		out := make([]ItemCount, len(in))
		for i, c := range in {
			out[i] = ItemCount{ItemID: c.ItemID, Count: c.Count}
		}
		return out
	}
	items := make([]ItemDef, len(set.Items))
	for i, it := range set.Items {
		items[i] = ItemDef{ID: it.ID, Title: it.Title}
	}
	shop := make([]Item, len(set.Shop))
	for i, it := range set.Shop {
		shop[i] = Item{ID: it.ID, Gems: it.Gems, Gold: it.Gold, Items: counts(it.Items), Title: it.Title}
	}
	dungeons := make([]Dungeon, len(set.Dungeons))
	for i, d := range set.Dungeons {
		dungeons[i] = Dungeon{ID: d.ID, Title: d.Title, Stamina: d.Stamina, Gold: d.Gold, Exp: d.Exp, LossExp: d.LossExp,
			MaxDPS: d.MaxDPS, DamageBase: d.DamageBase, DamagePerLevel: d.DamagePerLevel,
			MinPlay: time.Duration(d.MinPlayMs) * time.Millisecond, MaxPlay: time.Duration(d.MaxPlayMs) * time.Millisecond,
			Items: counts(d.Items)}
	}
	products := make([]Product, len(set.Products))
	for i, p := range set.Products {
		products[i] = Product{ID: p.ID, Title: p.Title, Gems: p.Gems, Items: counts(p.Items), PriceMicros: p.PriceMicros, Currency: p.Currency}
	}
	return NewTables(set.Version, items, shop, dungeons, products)
}

// tables returns the tables of req's client version.
func (g *Game) tables(ctx context.Context, req *protocol.Request) *Tables {
	if req.Principal == nil {
		return g.defaults
	}
	return g.clientTables(ctx, req.Principal.ClientVersion)
}

// clientTables returns the tables served to clientVersion.
func (g *Game) clientTables(ctx context.Context, clientVersion string) *Tables {
	if g.cfg.Data == nil {
		return g.defaults
	}
	if t := g.cfg.Data.Tables(ctx, clientVersion); t != nil {
		return t
	}
	return g.defaults
}

// publishedTables returns the tables of the published data version.
func (g *Game) publishedTables(ctx context.Context) *Tables {
	if g.cfg.Data == nil {
		return g.defaults
	}
	if t := g.cfg.Data.Published(ctx); t != nil {
		return t
	}
	return g.defaults
}
