package store

// LatestSchemaVersion is the number of the newest migration of dialect, for the tests.
func LatestSchemaVersion(dialect string) (int, error) {
	ms, err := loadMigrations(dialect)
	return len(ms), err
}
