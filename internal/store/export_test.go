package store

import "context"

// LatestSchemaVersion is the number of the newest migration of dialect, for the tests.
func LatestSchemaVersion(dialect string) (int, error) {
	ms, err := loadMigrations(dialect)
	return len(ms), err
}

// ExecRaw runs statements on the writer outside the pipeline: the tests use it to take a
// database back to an older schema, or to tamper with it as an attacker with database access.
func (s *Store) ExecRaw(ctx context.Context, q string, args ...any) error {
	_, err := s.write.ExecContext(ctx, s.d.rebind(q), args...)
	return err
}
