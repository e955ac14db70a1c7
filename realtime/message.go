package realtime

import (
	"encoding/binary"
	"errors"
	"strings"

	"github.com/madang-io/madang/protocol"
)

// Filter selects the connections a Broadcast reaches. An empty field matches
// everyone; set fields must all match the connection's Principal.
type Filter struct {
	// ClientVersion matches client versions that start with it, so "1.4."
	// selects every 1.4.x build and "1.4.2" exactly that one (and 1.4.20).
	ClientVersion string
	// Country matches Principal.Country exactly (ISO 3166-1 alpha-2).
	Country string
	// Language matches Principal.Language exactly (BCP 47).
	Language string
	// Platform matches Principal.Platform exactly ("android", "ios").
	Platform string
}

func (f *Filter) empty() bool { return *f == Filter{} }

// match reports whether p passes the filter (fields as raw bytes from a
// broker message: comparisons do not allocate).
func matchFilter(f *rawFilter, p *protocol.Principal) bool {
	if p == nil {
		return len(f.version)+len(f.country)+len(f.language)+len(f.platform) == 0
	}
	return strings.HasPrefix(p.ClientVersion, string(f.version)) &&
		(len(f.country) == 0 || string(f.country) == p.Country) &&
		(len(f.language) == 0 || string(f.language) == p.Language) &&
		(len(f.platform) == 0 || string(f.platform) == p.Platform)
}

type rawFilter struct {
	version, country, language, platform []byte
}

// message is a publication's data as the hub writes it to the broker:
//
//	byte 0     format version (1)
//	byte 1     flags: 0x01 a filter follows the topic
//	bytes 2-9  server time, Unix ms, big-endian int64
//	uvarint    topic length, then the topic
//	[filter]   four uvarint-length strings: client version prefix, country,
//	           language, platform
//	rest       the push payload (JSON, possibly empty)
//
// Each node turns it into a protocol.Push (adding the channel, and the
// offset as the push id) once per publication.
type message struct {
	stime     int64
	topic     []byte
	hasFilter bool
	filter    rawFilter
	payload   []byte
}

const (
	messageVersion    = 1
	messageFlagFilter = 0x01
)

var errMessage = errors.New("realtime: malformed broker message")

func appendMessage(dst []byte, stime int64, topic string, f *Filter, payload []byte) []byte {
	flags := byte(0)
	if f != nil && !f.empty() {
		flags |= messageFlagFilter
	}
	dst = append(dst, messageVersion, flags)
	dst = binary.BigEndian.AppendUint64(dst, uint64(stime))
	dst = appendString(dst, topic)
	if flags&messageFlagFilter != 0 {
		dst = appendString(dst, f.ClientVersion)
		dst = appendString(dst, f.Country)
		dst = appendString(dst, f.Language)
		dst = appendString(dst, f.Platform)
	}
	return append(dst, payload...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func parseMessage(b []byte, m *message) error {
	if len(b) < 10 || b[0] != messageVersion || b[1]&^messageFlagFilter != 0 {
		return errMessage
	}
	m.hasFilter = b[1]&messageFlagFilter != 0
	m.stime = int64(binary.BigEndian.Uint64(b[2:10]))
	rest := b[10:]
	var err error
	if m.topic, rest, err = cutString(rest); err != nil {
		return err
	}
	m.filter = rawFilter{}
	if m.hasFilter {
		for _, dst := range []*[]byte{&m.filter.version, &m.filter.country, &m.filter.language, &m.filter.platform} {
			if *dst, rest, err = cutString(rest); err != nil {
				return err
			}
		}
	}
	m.payload = rest
	return nil
}

func cutString(b []byte) (s, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errMessage
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}
