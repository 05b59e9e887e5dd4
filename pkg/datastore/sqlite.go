package datastore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"

	_ "github.com/mattn/go-sqlite3" // the driver kine's SQLite backend uses too
)

// openSQLite opens a kine SQLite file; readOnly never creates or changes it.
func openSQLite(path string, readOnly bool) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("datastore file: %w", err)
	}
	q := url.Values{"_busy_timeout": {"30000"}}
	if readOnly {
		q.Set("mode", "ro")
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("datastore file %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// SQLiteSnapshot copies the live SQLite datastore to dest with VACUUM INTO: one consistent
// read transaction, so writers carry on (WAL mode) and the copy is compact. dest must not
// exist.
func SQLiteSnapshot(ctx context.Context, dbFile, dest string) error {
	db, err := openSQLite(dbFile, false)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dest); err != nil {
		return fmt.Errorf("snapshot of %s: %w", dbFile, err)
	}
	return nil
}

// ErrNotSnapshot is a file that is not a kine SQLite datastore.
var ErrNotSnapshot = errors.New("not an Outpost SQLite datastore or snapshot")

// SQLiteCheck verifies that path is an intact kine SQLite datastore.
func SQLiteCheck(ctx context.Context, path string) error {
	db, err := openSQLite(path, true)
	if err != nil {
		return err
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='kine'").Scan(&n); err != nil || n != 1 {
		return fmt.Errorf("%s: %w", path, ErrNotSnapshot)
	}
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&res); err != nil || res != "ok" {
		return fmt.Errorf("%s: damaged (%s %v)", path, res, err)
	}
	return nil
}

// SQLiteGet reads a key's current value straight from a kine SQLite file (a snapshot, before
// any server runs on it); ok is false when the key is absent or deleted.
func SQLiteGet(ctx context.Context, path, key string) (value []byte, ok bool, err error) {
	db, err := openSQLite(path, true)
	if err != nil {
		return nil, false, err
	}
	defer db.Close()
	var deleted int
	err = db.QueryRowContext(ctx, "SELECT value, deleted FROM kine WHERE name = ? ORDER BY id DESC LIMIT 1", key).Scan(&value, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	return value, deleted == 0, nil
}

// SQLiteSource is a snapshot source: the live SQLite datastore.
type SQLiteSource struct{ File string }

// SaveTo writes a snapshot to path.
func (s SQLiteSource) SaveTo(ctx context.Context, path string) error {
	return SQLiteSnapshot(ctx, s.File, path)
}

// SQLiteRow is one current key of a kine SQLite file.
type SQLiteRow struct {
	Key   string
	Value []byte
	Lease int64 // TTL in seconds, 0 for none
}

// SQLiteEach calls fn with every current (not deleted) key of a kine SQLite file, in key
// order; kine's own bookkeeping rows are skipped.
func SQLiteEach(ctx context.Context, path string, fn func(SQLiteRow) error) error {
	db, err := openSQLite(path, true)
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT k.name, k.value, k.lease FROM kine k
		JOIN (SELECT MAX(id) AS id FROM kine GROUP BY name) last ON k.id = last.id
		WHERE k.deleted = 0 AND k.name LIKE '/%' ORDER BY k.name`)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r SQLiteRow
		if err := rows.Scan(&r.Key, &r.Value, &r.Lease); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}
