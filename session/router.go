package session

import (
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
)

// Rule is how a Router maps a user key to a node.
type Rule uint8

// The routing rules.
const (
	// Modulo: node index = userKey mod len(nodes). Spreads users evenly;
	// adding a node changes the home of most users (see Router.Moving).
	Modulo Rule = iota
	// Ranges: RouterConfig.Starts[i] is the first user key of node i, in
	// ascending order, Starts[0] the smallest; keys below Starts[0] go to
	// node 0. Matches user keys allocated in ranges per database (the talk's
	// 10000000, 20000000, ...); adding a node for a new range moves nobody.
	Ranges
)

// RouterConfig configures a Router. The zero value routes by Modulo.
type RouterConfig struct {
	// Rule picks the node of a user key. Default Modulo.
	Rule Rule
	// Starts are the first user keys of each node for Ranges: one per node,
	// strictly ascending. Ignored for Modulo.
	Starts []int64
	// Previous is the layout being migrated from, if any. While set, reads
	// that miss on a user's new node fall back to the node Previous names,
	// writes go to the new node, and revocations reach both, so adding a node
	// logs nobody out. Drop it once Config.TTL + Config.Tombstone have passed
	// since the switch (every session on an old home has ended by then).
	Previous *Router
}

// Router maps user keys to Redis nodes by a documented, stable rule (see
// Rule). Every Redis key of a user carries the hash tag {u:<userKey>}, so a
// node may itself be a Redis Cluster or a Sentinel-backed client. A Router
// is immutable and safe for concurrent use; to change the layout build a new
// one with Previous set to the old one.
type Router struct {
	nodes  []redis.UniversalClient
	rule   Rule
	starts []int64
	prev   *Router
}

// Single returns a Router with one node.
func Single(c redis.UniversalClient) *Router {
	return &Router{nodes: []redis.UniversalClient{c}}
}

// NewRouter returns a Router over nodes (at least one, none nil).
func NewRouter(nodes []redis.UniversalClient, cfg RouterConfig) (*Router, error) {
	if len(nodes) == 0 {
		return nil, errors.New("session: router needs at least one node")
	}
	if slices.Contains(nodes, nil) {
		return nil, errors.New("session: router node is nil")
	}
	r := &Router{nodes: slices.Clone(nodes), rule: cfg.Rule, prev: cfg.Previous}
	switch cfg.Rule {
	case Modulo:
	case Ranges:
		if len(cfg.Starts) != len(nodes) {
			return nil, fmt.Errorf("session: %d range starts for %d nodes", len(cfg.Starts), len(nodes))
		}
		for i := 1; i < len(cfg.Starts); i++ {
			if cfg.Starts[i] <= cfg.Starts[i-1] {
				return nil, errors.New("session: range starts must be strictly ascending")
			}
		}
		r.starts = slices.Clone(cfg.Starts)
	default:
		return nil, fmt.Errorf("session: unknown routing rule %d", cfg.Rule)
	}
	return r, nil
}

// Index returns the index of userKey's node.
func (r *Router) Index(userKey int64) int {
	n := int64(len(r.nodes))
	if r.rule == Ranges {
		// The last start at or below userKey.
		i, found := slices.BinarySearch(r.starts, userKey)
		if !found {
			i--
		}
		return max(i, 0)
	}
	return int(((userKey % n) + n) % n)
}

// Node returns userKey's node.
func (r *Router) Node(userKey int64) redis.UniversalClient { return r.nodes[r.Index(userKey)] }

// Moving returns the node userKey lived on under Previous when it differs
// from its current node, else nil.
func (r *Router) Moving(userKey int64) redis.UniversalClient {
	if r.prev == nil {
		return nil
	}
	old := r.prev.Node(userKey)
	if old == r.Node(userKey) {
		return nil
	}
	return old
}

// Nodes returns the distinct nodes of the router and of Previous, current
// ones first. The first is where global values (the cache version) live.
func (r *Router) Nodes() []redis.UniversalClient {
	out := slices.Clone(r.nodes)
	if r.prev != nil {
		for _, n := range r.prev.Nodes() {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}
