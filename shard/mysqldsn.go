package shard

import (
	"strings"

	"github.com/go-sql-driver/mysql"
)

// MySQLDSN returns dsn, a go-sql-driver/mysql DSN, with
// interpolateParams=true added when that is safe, and dsn unchanged
// otherwise. It is the MySQL/MariaDB (and Vitess vtgate) DSN madang
// recommends for the common and game databases, as SQLiteDSN is for SQLite:
//
//	dsn, err := shard.MySQLDSN("game:secret@tcp(10.0.0.5:3306)/madang?parseTime=true")
//	db, err := sql.Open("mysql", dsn)
//
// Without interpolation the driver sends every statement that has
// arguments as a prepared statement it prepares, executes and closes
// again: three packets and two round trips where one does. With it the
// driver puts the escaped arguments into the query text and sends one
// query (BENCHMARKS.md, "MySQL round trips per command (issue 17)"). Nothing
// else changes for madang's SQL: its stores pass integers, strings and
// byte slices, which the driver escapes for the connection's character set
// and honours the server's NO_BACKSLASH_ESCAPES mode.
//
// dsn is returned unchanged when it says interpolateParams itself (true or
// false: the caller decided), or when its connection character set could
// make interpolation unsafe: a charset parameter other than utf8mb4,
// utf8mb3, utf8, latin1, ascii or binary (the multi-byte encodings BIG5,
// CP932, GB2312, GBK, GB18030 and SJIS can hide a quote in a character's
// second byte), a collation of another character set, or a
// character_set_* or collation_* system variable. Without any of them the
// driver connects with utf8mb4, which is safe. A dsn the driver cannot
// parse is its error.
//
// The router uses the DSNs of the directory and Config.DSNTemplate as they
// are: pass them through MySQLDSN first (a template's {host}, {port} and
// {db} survive it).
func MySQLDSN(dsn string) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", err
	}
	params := dsnParams(dsn)
	if _, set := params["interpolateParams"]; set {
		return dsn, nil
	}
	if cs, ok := params["charset"]; ok {
		for c := range strings.SplitSeq(cs, ",") {
			if !interpolationSafeCharsets[strings.ToLower(c)] {
				return dsn, nil
			}
		}
	}
	if col := strings.ToLower(cfg.Collation); col != "" {
		cs, _, _ := strings.Cut(col, "_")
		if !interpolationSafeCharsets[cs] {
			return dsn, nil
		}
	}
	for k := range cfg.Params {
		if k = strings.ToLower(k); strings.HasPrefix(k, "character_set_") || strings.HasPrefix(k, "collation_") {
			return dsn, nil
		}
	}
	sep := "?"
	if strings.Contains(dsn[strings.LastIndexByte(dsn, '/'):], "?") {
		sep = "&"
	}
	out := dsn + sep + "interpolateParams=true"
	if _, err := mysql.ParseDSN(out); err != nil {
		return "", err
	}
	return out, nil
}

// interpolationSafeCharsets are the connection character sets in which no
// character's encoding contains the byte of a quote or backslash that is
// not that character.
var interpolationSafeCharsets = map[string]bool{
	"utf8mb4": true, "utf8mb3": true, "utf8": true, "latin1": true, "ascii": true, "binary": true,
}

// dsnParams returns the parameters of a go-sql-driver/mysql DSN as the
// driver finds them: after the first '?' that follows the last '/'. Names
// are as written; values are not unescaped.
func dsnParams(dsn string) map[string]string {
	out := map[string]string{}
	slash := strings.LastIndexByte(dsn, '/')
	if slash < 0 {
		return out
	}
	_, query, ok := strings.Cut(dsn[slash:], "?")
	if !ok {
		return out
	}
	for kv := range strings.SplitSeq(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}
