package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

func openPostgres(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: parse PostgreSQL URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to PostgreSQL at %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	// One pool serves reads and writes; PostgreSQL isolates concurrent writers itself.
	return &Store{
		conn:    &conn{d: postgresDialect, db: db},
		write:   db,
		closers: []*sql.DB{db},
	}, nil
}
