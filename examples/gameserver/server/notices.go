package server

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/madang-io/madang/examples/gameserver/ops"
	"github.com/madang-io/madang/realtime"
)

// NoticesPath is the ops API endpoint that broadcasts a notice to the
// players connected to the realtime hubs:
//
//	POST /v1/notices  {"topic": "notice"|"maintenance"|"event", "message": "...",
//	                   "filter": {"client_version", "country", "language", "platform"}}
//	                  → {"offset": n, "epoch": "..."} (the system channel's position)
//
// It needs the ops bearer token. The push goes out on the "system" channel
// through the game server's hub (realtime.Hub.Broadcast): in Redis mode its
// broker carries it to every game server's /ws and every realtime node
// sharing the Redis prefix; clients subscribed to "system" whose session
// matches the filter (empty fields match everyone; client_version is a
// prefix) get the push with that topic and payload {"message": "..."}.
const NoticesPath = "/v1/notices"

// MaxNoticeLen is the longest notice message, in bytes of UTF-8.
const MaxNoticeLen = 2000

// Notice topics accepted by NoticesPath.
const (
	NoticeTopicNotice      = "notice"
	NoticeTopicMaintenance = "maintenance"
	NoticeTopicEvent       = "event"
)

// NoticeRequest is the body of POST /v1/notices.
type NoticeRequest struct {
	Topic   string       `json:"topic"`
	Message string       `json:"message"`
	Filter  NoticeFilter `json:"filter"`
}

// NoticeFilter selects the sessions a notice reaches (realtime.Filter).
type NoticeFilter struct {
	ClientVersion string `json:"client_version,omitempty"`
	Country       string `json:"country,omitempty"`
	Language      string `json:"language,omitempty"`
	Platform      string `json:"platform,omitempty"`
}

// NoticePayload is the payload of the pushes NoticesPath sends.
type NoticePayload struct {
	Message string `json:"message"`
}

// NoticesHandler serves POST /v1/notices (NoticesPath) on hub, behind the
// bearer token. Answers: 200 with the system channel position, 400 for a
// bad body (unknown topic, empty or too long message, unknown fields), 401
// without the token, 503 when the broker refused the publication.
func NoticesHandler(hub *realtime.Hub, token string, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeNoticeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use POST"})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="madang-ops"`)
			writeNoticeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
			return
		}
		var req NoticeRequest
		if err := decodeNotice(w, r, &req); err != nil {
			writeNoticeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		payload, _ := json.Marshal(NoticePayload{Message: req.Message})
		f := realtime.Filter{
			ClientVersion: req.Filter.ClientVersion, Country: req.Filter.Country,
			Language: req.Filter.Language, Platform: req.Filter.Platform,
		}
		pos, err := hub.Broadcast(r.Context(), f, req.Topic, payload)
		if err != nil {
			log.Warn("ops: notice broadcast failed", "topic", req.Topic, "err", err)
			writeNoticeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "broadcast failed, retry"})
			return
		}
		log.Info("ops: POST "+NoticesPath, "topic", req.Topic, "filter", req.Filter, "remote", r.RemoteAddr)
		writeNoticeJSON(w, http.StatusOK, pos)
	})
}

func decodeNotice(w http.ResponseWriter, r *http.Request, req *NoticeRequest) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, ops.MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("body over %d bytes", ops.MaxBody)
		}
		return fmt.Errorf("bad JSON body: %v", err)
	}
	if dec.More() {
		return errors.New("bad JSON body: trailing data")
	}
	switch req.Topic {
	case NoticeTopicNotice, NoticeTopicMaintenance, NoticeTopicEvent:
	default:
		return fmt.Errorf("topic must be %q, %q or %q", NoticeTopicNotice, NoticeTopicMaintenance, NoticeTopicEvent)
	}
	switch {
	case strings.TrimSpace(req.Message) == "":
		return errors.New("message is required")
	case len(req.Message) > MaxNoticeLen:
		return fmt.Errorf("message over %d bytes", MaxNoticeLen)
	case !utf8.ValidString(req.Message):
		return errors.New("message is not valid UTF-8")
	}
	return nil
}

func writeNoticeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// withNotices serves NoticesPath with NoticesHandler and everything else
// with the ops API: the admin listener's handler.
func withNotices(admin http.Handler, hub *realtime.Hub, token string, log *slog.Logger) http.Handler {
	m := http.NewServeMux()
	m.Handle(NoticesPath, NoticesHandler(hub, token, log))
	m.Handle("/", admin)
	return m
}
