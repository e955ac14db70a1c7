package realtime

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/madang-io/madang/protocol"
)

// Channel names. A channel's kind comes from its name:
//
//   - "world.<n>" (KindWorld): a partition of world chat. Clients join
//     "world" and get the first partition with room (Config.WorldPartitionSize
//     members); they rejoin their partition by its full name when they resume.
//   - "guild.<id>" (KindGuild): guild chat. Config.Authorize decides who may
//     join and talk; without it guild channels are refused (forbidden).
//   - "user.<userKey>" (KindUser): one user's private channel on the broker,
//     for whispers and Hub.PushUser. Every connection is subscribed to its
//     own, live, when it connects; clients cannot subscribe to or publish on
//     one (rt.whisper sends to it) and read their own missed messages with
//     rt.history.
//   - "system" (KindSystem): notices, events and maintenance announcements
//     from Hub.Broadcast (each filtered by client version, country, language
//     or platform on the receiving node). Clients subscribe; only the server
//     publishes.
//   - anything else (KindCustom): refused unless Config.Authorize allows it.
//
// Names are 1 to MaxChannelLen bytes of [A-Za-z0-9_.:-].
const (
	ChannelWorld  = "world"
	ChannelSystem = "system"
	prefixWorld   = "world."
	prefixGuild   = "guild."
	prefixUser    = "user."
	// MaxChannelLen is the longest channel name.
	MaxChannelLen = 128
)

// ChannelKind is what a channel is for, from its name.
type ChannelKind uint8

// Channel kinds.
const (
	KindCustom ChannelKind = iota
	KindWorld
	KindGuild
	KindUser
	KindSystem
)

// String returns "custom", "world", "guild", "user" or "system".
func (k ChannelKind) String() string {
	switch k {
	case KindWorld:
		return "world"
	case KindGuild:
		return "guild"
	case KindUser:
		return "user"
	case KindSystem:
		return "system"
	}
	return "custom"
}

// KindOf returns the kind of a channel name.
func KindOf(channel string) ChannelKind {
	switch {
	case channel == ChannelSystem:
		return KindSystem
	case strings.HasPrefix(channel, prefixWorld):
		return KindWorld
	case strings.HasPrefix(channel, prefixGuild):
		return KindGuild
	case strings.HasPrefix(channel, prefixUser):
		return KindUser
	}
	return KindCustom
}

// UserChannel returns the private channel of a user ("user.<userKey>").
func UserChannel(userKey int64) string { return prefixUser + strconv.FormatInt(userKey, 10) }

// WorldChannel returns the name of world chat partition n ("world.<n>").
func WorldChannel(n int) string { return prefixWorld + strconv.Itoa(n) }

func validChannel(s string) bool {
	if len(s) == 0 || len(s) > MaxChannelLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// Action is what a client wants to do on a channel, for Config.Authorize.
type Action uint8

// Actions.
const (
	ActionSubscribe Action = iota + 1
	ActionPublish
	ActionHistory
)

// ChatMessage is a client's chat message on its way to a channel, for
// Config.Validate. Validate may replace Data (a filtered text).
type ChatMessage struct {
	Principal *protocol.Principal
	Channel   string
	// To is the receiving user of a whisper (Channel is then its user
	// channel); 0 otherwise.
	To   int64
	Data json.RawMessage
}

// tokenBucket is a rate limiter: rate tokens per second up to burst. take
// lets the balance go down to -burst, counting refusals, so a client that
// keeps flooding after being refused can be told apart and disconnected.
type tokenBucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// take spends one token. It returns ok, the wait until a token is back when
// refused, and whether the client is far over (balance at -burst).
func (b *tokenBucket) take(now time.Time, rate float64, burst int) (ok bool, wait time.Duration, flood bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(burst), b.tokens+d.Seconds()*rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0, false
	}
	b.tokens = max(b.tokens-1, -float64(burst))
	wait = time.Duration((1 - b.tokens) / rate * float64(time.Second))
	return false, wait, b.tokens <= -float64(burst)
}

// worldPartitions counts this node's members of each world partition (the
// fallback of Hub.pickWorld when Presence fails).
type worldPartitions struct {
	mu     sync.Mutex
	counts map[int]int
}

func (w *worldPartitions) add(channel string, d int) {
	n, err := strconv.Atoi(channel[len(prefixWorld):])
	if err != nil {
		return
	}
	w.mu.Lock()
	if w.counts == nil {
		w.counts = make(map[int]int)
	}
	w.counts[n] += d
	if w.counts[n] <= 0 {
		delete(w.counts, n)
	}
	w.mu.Unlock()
}

func worldIndex(channel string, maxParts int) (int, bool) {
	n, err := strconv.Atoi(channel[len(prefixWorld):])
	return n, err == nil && n >= 0 && n < maxParts && WorldChannel(n) == channel
}

// AuthorizeFunc decides whether a client may act on a guild or custom
// channel; a nil error allows. See Config.Authorize.
type AuthorizeFunc func(ctx context.Context, p *protocol.Principal, channel string, a Action) error
