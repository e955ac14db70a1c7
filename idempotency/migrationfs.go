package idempotency

import (
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"
)

// migrationFS is a read-only file system of the root directory's files
// (name to contents): the migration set SQLStore.Migrations returns.
type migrationFS map[string]string

var (
	_ fs.ReadDirFS  = migrationFS{}
	_ fs.ReadFileFS = migrationFS{}
)

// Open implements fs.FS.
func (m migrationFS) Open(name string) (fs.File, error) {
	if name == "." {
		return &migrationDir{entries: m.entries()}, nil
	}
	body, ok := m[name]
	if !ok || !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &migrationFile{info: fileInfo{name: name, size: int64(len(body))}, r: strings.NewReader(body)}, nil
}

// ReadFile implements fs.ReadFileFS.
func (m migrationFS) ReadFile(name string) ([]byte, error) {
	body, ok := m[name]
	if !ok {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(body), nil
}

// ReadDir implements fs.ReadDirFS.
func (m migrationFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if name != "." {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	return m.entries(), nil
}

func (m migrationFS) entries() []fs.DirEntry {
	out := make([]fs.DirEntry, 0, len(m))
	for name, body := range m {
		out = append(out, fs.FileInfoToDirEntry(fileInfo{name: name, size: int64(len(body))}))
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

type fileInfo struct {
	name string
	size int64
	dir  bool
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return f.size }
func (f fileInfo) ModTime() time.Time { return time.Time{} }
func (f fileInfo) IsDir() bool        { return f.dir }
func (f fileInfo) Sys() any           { return nil }
func (f fileInfo) Mode() fs.FileMode {
	if f.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}

type migrationFile struct {
	info fileInfo
	r    *strings.Reader
}

func (f *migrationFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *migrationFile) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *migrationFile) Close() error               { return nil }

type migrationDir struct {
	entries []fs.DirEntry
	off     int
}

func (d *migrationDir) Stat() (fs.FileInfo, error) { return fileInfo{name: ".", dir: true}, nil }
func (d *migrationDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: ".", Err: fs.ErrInvalid}
}
func (d *migrationDir) Close() error { return nil }

// ReadDir implements fs.ReadDirFile.
func (d *migrationDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	rest = rest[:min(n, len(rest))]
	d.off += len(rest)
	return rest, nil
}
