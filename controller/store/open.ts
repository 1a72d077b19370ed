// `--db`: a postgres:// URL opens the PostgreSQL store, anything else is a SQLite file.
import { isPostgresUrl, PostgresControllerStore, type PostgresStoreOptions } from './postgres.js';
import { SqliteControllerStore } from './sqlite.js';
import type { ControllerStore } from './types.js';

export async function openControllerStore(db: string, opts: PostgresStoreOptions = {}): Promise<ControllerStore> {
  return isPostgresUrl(db) ? PostgresControllerStore.open(db, opts) : SqliteControllerStore.open(db);
}
