package protocol

import "unicode/utf8"

// The envelope decoders' fast path. DecodeRequest and DecodeResponse first
// try scanRequest / scanResponse, which read the envelopes real clients and
// servers send (members spelled as PROTOCOL.md §9 spells them, strings
// without escapes, integers in range, unknown members and payloads of any
// valid JSON) in one pass without reflection. Whatever they are not sure to
// read exactly as encoding/json reads it — a syntax error, a member name
// that differs from a field's only in case or that has escapes or non-ASCII
// bytes (encoding/json matches names case-insensitively, with Unicode
// folding), a string with an escape or invalid UTF-8, a number of another
// form or type, a value of the wrong type, nesting past scanMaxDepth — they
// give up on, and the decoder runs encoding/json instead. So the accepted
// inputs, the decoded values (last duplicate wins, a null member leaves the
// field alone, unknown members are ignored) and even the error messages stay
// encoding/json's: TestEnvelopeScanMatchesEncodingJSON and
// FuzzEnvelopeDifferential compare both.

// scanMaxDepth bounds the nesting the fast path validates itself (the
// envelope object included); deeper input goes to encoding/json, whose own
// limit is 10000.
const scanMaxDepth = 64

// span is a string's or value's bytes in the body: b[start:end].
type span struct{ start, end int }

func (p span) len() int { return p.end - p.start }

// reqSpans is a request envelope as scanRequest read it.
type reqSpans struct {
	cmd, rid, token, payload span
	seq                      uint64
	ctime                    int64
}

// respSpans is a response envelope as scanResponse read it.
type respSpans struct {
	rid, msg, payload span
	seq               uint64
	code              int64
	stime, retry      int64
	replay            bool
}

// scanRequest reads body into w. It returns false when it cannot be sure to
// read body as encoding/json would; w is then partly filled and must be
// discarded.
func scanRequest(body []byte, w *reqSpans) bool {
	s := envScanner{b: body}
	if !s.objectStart() {
		return false
	}
	for s.more() {
		key, ok := s.key()
		if !ok {
			return false
		}
		switch string(key) {
		case "cmd":
			ok = s.str(&w.cmd)
		case "seq":
			ok = s.uint(&w.seq)
		case "rid":
			ok = s.str(&w.rid)
		case "ctime":
			ok = s.int(&w.ctime, 18)
		case "token":
			ok = s.str(&w.token)
		case "payload":
			ok = s.raw(&w.payload)
		default:
			ok = !foldsToAny(key, requestFields) && s.skip()
		}
		if !ok {
			return false
		}
	}
	return s.end()
}

// scanResponse is scanRequest for a response envelope.
func scanResponse(body []byte, r *respSpans) bool {
	s := envScanner{b: body}
	if !s.objectStart() {
		return false
	}
	for s.more() {
		key, ok := s.key()
		if !ok {
			return false
		}
		switch string(key) {
		case "seq":
			ok = s.uint(&r.seq)
		case "rid":
			ok = s.str(&r.rid)
		case "code":
			ok = s.int(&r.code, 9) // Code is an int32
		case "msg":
			ok = s.str(&r.msg)
		case "stime":
			ok = s.int(&r.stime, 18)
		case "retry_ms":
			ok = s.int(&r.retry, 18)
		case "replay":
			ok = s.bool(&r.replay)
		case "payload":
			ok = s.raw(&r.payload)
		default:
			ok = !foldsToAny(key, responseFields) && s.skip()
		}
		if !ok {
			return false
		}
	}
	return s.end()
}

var (
	requestFields  = []string{"cmd", "seq", "rid", "ctime", "token", "payload"}
	responseFields = []string{"seq", "rid", "code", "msg", "stime", "retry_ms", "replay", "payload"}
)

// foldsToAny reports whether the ASCII name key equals one of fields apart
// from ASCII case. (key only returns ASCII names without escapes; for
// those, encoding/json's case folding is ASCII folding.)
func foldsToAny(key []byte, fields []string) bool {
	for _, f := range fields {
		if len(f) != len(key) {
			continue
		}
		eq := true
		for i := range len(key) {
			c := key[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != f[i] {
				eq = false
				break
			}
		}
		if eq {
			return true
		}
	}
	return false
}

// envScanner walks one JSON object. Every method returns false when the
// input is not what the fast path reads (see the top of the file).
type envScanner struct {
	b      []byte
	i      int
	first  bool // no member read yet
	closed bool // the closing brace was read
}

func (s *envScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// objectStart reads the opening brace.
func (s *envScanner) objectStart() bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	s.first = true
	return true
}

// more reports whether another member follows, reading the comma before
// it; at the closing brace it reads it, sets closed and returns false (as
// on a syntax error, without closed).
func (s *envScanner) more() bool {
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	c := s.b[s.i]
	if c == '}' {
		// "{}" or after a member; "{...,}" never gets here: after a comma
		// a name must follow.
		s.i++
		s.closed = true
		return false
	}
	if s.first {
		s.first = false
		return c == '"'
	}
	if c != ',' {
		return false
	}
	s.i++
	s.ws()
	return s.i < len(s.b) && s.b[s.i] == '"'
}

// end reports whether the object was closed and only white space follows.
func (s *envScanner) end() bool {
	if !s.closed {
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

// key reads a member name and its colon. Only names of printable ASCII
// without escapes are read here.
func (s *envScanner) key() ([]byte, bool) {
	s.i++ // the opening quote, checked by more
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			k := s.b[start:s.i]
			s.i++
			s.ws()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return nil, false
			}
			s.i++
			s.ws()
			return k, true
		}
		if c < 0x20 || c >= utf8.RuneSelf || c == '\\' {
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// isNull reads a null literal if one is next.
func (s *envScanner) isNull() bool {
	return s.literal("null")
}

// str reads a string without escapes and of valid UTF-8 (its bytes are its
// value); null leaves *dst as it is, as encoding/json does.
func (s *envScanner) str(dst *span) bool {
	if s.isNull() {
		return true
	}
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return false
	}
	s.i++
	start := s.i
	ascii := true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			if !ascii && !utf8.Valid(v) {
				return false // encoding/json replaces invalid bytes with U+FFFD
			}
			*dst = span{start, s.i - 1}
			return true
		case c == '\\' || c < 0x20:
			return false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		s.i++
	}
	return false
}

// digits reads a run of decimal digits as a JSON integer (no leading zero,
// at most max digits, no fraction or exponent after it).
func (s *envScanner) digits(max int) (uint64, bool) {
	start := s.i
	var n uint64
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		n = n*10 + uint64(s.b[s.i]-'0')
		s.i++
	}
	l := s.i - start
	if l == 0 || l > max || (l > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return n, true
}

// uint reads an unsigned integer of at most 19 digits (no overflow); null
// leaves *dst as it is.
func (s *envScanner) uint(dst *uint64) bool {
	if s.isNull() {
		return true
	}
	n, ok := s.digits(19)
	if ok {
		*dst = n
	}
	return ok
}

// int reads a signed integer of at most max digits (max ≤ 18: no
// overflow); null leaves *dst as it is.
func (s *envScanner) int(dst *int64, max int) bool {
	if s.isNull() {
		return true
	}
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	n, ok := s.digits(max)
	if !ok {
		return false
	}
	*dst = int64(n)
	if neg {
		*dst = -*dst
	}
	return true
}

// bool reads true or false; null leaves *dst as it is.
func (s *envScanner) bool(dst *bool) bool {
	switch {
	case s.literal("true"):
		*dst = true
	case s.literal("false"):
		*dst = false
	case s.isNull():
	default:
		return false
	}
	return true
}

// raw reads any JSON value, as json.RawMessage does: the value's bytes,
// null included.
func (s *envScanner) raw(dst *span) bool {
	start := s.i
	if !s.skip() {
		return false
	}
	*dst = span{start, s.i}
	return true
}

// skip validates one JSON value, as encoding/json's scanner does, and
// reads past it. Strings may hold any bytes but control characters here
// (the scanner does not check UTF-8); their escapes must be valid.
func (s *envScanner) skip() bool { return s.value(2) } // depth 1 is the envelope

func (s *envScanner) value(depth int) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.skipString()
	case c == '{':
		if depth > scanMaxDepth {
			return false
		}
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return true
		}
		for {
			if s.i >= len(s.b) || s.b[s.i] != '"' || !s.skipString() {
				return false
			}
			s.ws()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return false
			}
			s.i++
			s.ws()
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			if s.i >= len(s.b) {
				return false
			}
			switch s.b[s.i] {
			case ',':
				s.i++
				s.ws()
			case '}':
				s.i++
				return true
			default:
				return false
			}
		}
	case c == '[':
		if depth > scanMaxDepth {
			return false
		}
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return true
		}
		for {
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			if s.i >= len(s.b) {
				return false
			}
			switch s.b[s.i] {
			case ',':
				s.i++
				s.ws()
			case ']':
				s.i++
				return true
			default:
				return false
			}
		}
	case c == '-' || ('0' <= c && c <= '9'):
		return s.skipNumber()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

func (s *envScanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// skipString reads past a string starting at its opening quote.
func (s *envScanner) skipString() bool {
	s.i++
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return false
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if len(s.b)-s.i < 5 {
					return false
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !isHex(h) {
						return false
					}
				}
				s.i += 5
			default:
				return false
			}
		default:
			s.i++
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// skipNumber reads past a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *envScanner) skipNumber() bool {
	if s.b[s.i] == '-' {
		s.i++
	}
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '0':
		s.i++
	case '1' <= c && c <= '9':
		s.skipDigits()
	default:
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.skipDigits() {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.skipDigits() {
			return false
		}
	}
	return true
}

// skipDigits reads one or more digits.
func (s *envScanner) skipDigits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
