package datafile_test

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/madang-io/madang/examples/datatool/datafile"
)

// FuzzDecode decodes arbitrary bytes twice: as given (almost always a
// hash mismatch) and with the header's hashes fixed up, so that the
// manifest and payload parsers see the input. Either a *DecodeError or a
// file whose re-encoding decodes to the same tables; never a panic. Allocation is
// bounded by the input's size (counts are checked against the bytes left).
func FuzzDecode(f *testing.F) {
	b, err := os.ReadFile("../example/gamedata/testdata/data.bytes")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:datafile.HeaderSize])
	f.Add([]byte(datafile.Magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(data []byte) {
			file, err := datafile.Decode(data)
			if err != nil {
				var de *datafile.DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("error %v is not a *DecodeError", err)
				}
				return
			}
			again, err := datafile.Encode(file.Book, file.Version)
			if err != nil {
				t.Fatalf("decoded file does not encode: %v", err)
			}
			file2, err := datafile.Decode(again)
			if err != nil || dump(file2.Book) != dump(file.Book) || file2.Version != file.Version {
				t.Fatalf("re-encoded file decodes to other tables (%v)", err)
			}
		}
		check(data)
		if len(data) >= datafile.HeaderSize {
			fixed := append([]byte(nil), data...)
			// The schema section: after the version string.
			if n, k := binary.Uvarint(fixed[datafile.HeaderSize:]); k > 0 && n < uint64(len(fixed)) {
				at := datafile.HeaderSize + k + int(n)
				if at < len(fixed) {
					if m, k2 := binary.Uvarint(fixed[at:]); k2 > 0 && m <= uint64(len(fixed)-at-k2) {
						sh := sha256.Sum256(fixed[at+k2 : at+k2+int(m)])
						copy(fixed[40:72], sh[:])
					}
				}
			}
			body := sha256.Sum256(fixed[datafile.HeaderSize:])
			copy(fixed[8:40], body[:])
			check(fixed)
		}
	})
}
