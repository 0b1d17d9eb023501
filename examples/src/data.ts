import Database from 'better-sqlite3';

/** A monitored site of a project. */
export interface Site {
  id: string;
  projectId: string;
  name: string;
  url: string;
}

/** One uptime check of a site. */
export interface Check {
  id: number;
  siteId: string;
  checkedAt: string;
  status: 'up' | 'down';
  httpStatus: number;
  responseMs: number;
}

/** A check to record: which project's site, and the outcome. */
export type NewCheck = Omit<Check, 'id'> & { projectId: string };

/** What `/sites/:siteId/summary` reports. */
export interface SiteSummary {
  status: 'up' | 'down' | 'unknown';
  checks: number;
  uptimePercent: number | null;
  averageResponseMs: number | null;
  lastCheckedAt: string | null;
}

/**
 * The monitoring platform's own data (sites and checks), in tables beside keyscope's in the
 * same SQLite file. Projects and owners live in the keyscope store, which is the project
 * directory the ownership checks read. Site ids are per project and every query takes the
 * project id: a site is only ever found through the project that owns it.
 */
export class MonitoringData {
  private readonly db: Database.Database;
  private readonly statements;

  constructor(filename: string) {
    this.db = new Database(filename);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 2000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS example_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS example_sites (
        project_id TEXT NOT NULL,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        url TEXT NOT NULL,
        PRIMARY KEY (project_id, id)
      );
      CREATE TABLE IF NOT EXISTS example_checks (
        id INTEGER PRIMARY KEY,
        project_id TEXT NOT NULL,
        site_id TEXT NOT NULL,
        checked_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('up', 'down')),
        http_status INTEGER NOT NULL,
        response_ms INTEGER NOT NULL,
        FOREIGN KEY (project_id, site_id) REFERENCES example_sites (project_id, id)
      );
      CREATE INDEX IF NOT EXISTS example_checks_site ON example_checks (project_id, site_id, checked_at);
    `);
    const check = 'id, site_id AS siteId, checked_at AS checkedAt, status, http_status AS httpStatus, response_ms AS responseMs';
    this.statements = {
      getMeta: this.db.prepare<[string], { value: string }>('SELECT value FROM example_meta WHERE name = ?'),
      setMeta: this.db.prepare('INSERT OR REPLACE INTO example_meta (name, value) VALUES (?, ?)'),
      addSite: this.db.prepare('INSERT INTO example_sites (id, project_id, name, url) VALUES (@id, @projectId, @name, @url)'),
      addCheck: this.db.prepare(
        `INSERT INTO example_checks (project_id, site_id, checked_at, status, http_status, response_ms)
         VALUES (@projectId, @siteId, @checkedAt, @status, @httpStatus, @responseMs)`,
      ),
      sites: this.db.prepare<[string], Site>('SELECT id, project_id AS projectId, name, url FROM example_sites WHERE project_id = ? ORDER BY id'),
      site: this.db.prepare<[string, string], Site>(
        'SELECT id, project_id AS projectId, name, url FROM example_sites WHERE project_id = ? AND id = ?',
      ),
      summary: this.db.prepare<[string, string], { checks: number; up: number; averageResponseMs: number | null; lastCheckedAt: string | null }>(
        `SELECT count(*) AS checks, coalesce(sum(status = 'up'), 0) AS up, avg(response_ms) AS averageResponseMs, max(checked_at) AS lastCheckedAt
         FROM example_checks WHERE project_id = ? AND site_id = ?`,
      ),
      lastCheck: this.db.prepare<[string, string], { status: 'up' | 'down' }>(
        'SELECT status FROM example_checks WHERE project_id = ? AND site_id = ? ORDER BY checked_at DESC, id DESC LIMIT 1',
      ),
      recentChecks: this.db.prepare<[string, number], Check>(
        `SELECT ${check} FROM example_checks WHERE project_id = ? ORDER BY checked_at DESC, id DESC LIMIT ?`,
      ),
    };
  }

  /** Has the demo data been written to this file? */
  isSeeded(): boolean {
    return this.statements.getMeta.get('seeded_at') !== undefined;
  }

  /** Write sites and their checks in one transaction, and remember that the file is seeded. */
  seed(sites: Site[], checks: NewCheck[], at: Date): void {
    this.db.transaction(() => {
      this.add(sites, checks);
      this.statements.setMeta.run('seeded_at', at.toISOString());
    })();
  }

  /** Add sites and checks (one transaction). */
  add(sites: Site[], checks: NewCheck[] = []): void {
    this.db.transaction(() => {
      for (const site of sites) this.statements.addSite.run(site);
      for (const check of checks) this.statements.addCheck.run(check);
    })();
  }

  sites(projectId: string): Site[] {
    return this.statements.sites.all(projectId);
  }

  /** A site of this project, or `null` (also when the site exists in another project). */
  site(projectId: string, siteId: string): Site | null {
    return this.statements.site.get(projectId, siteId) ?? null;
  }

  summary(site: Site): SiteSummary {
    const row = this.statements.summary.get(site.projectId, site.id)!;
    const last = this.statements.lastCheck.get(site.projectId, site.id);
    return {
      status: last?.status ?? 'unknown',
      checks: row.checks,
      uptimePercent: row.checks === 0 ? null : Math.round((row.up / row.checks) * 1000) / 10,
      averageResponseMs: row.averageResponseMs === null ? null : Math.round(row.averageResponseMs),
      lastCheckedAt: row.lastCheckedAt,
    };
  }

  /** The newest checks across the project's sites. */
  recentChecks(projectId: string, limit = 20): Check[] {
    return this.statements.recentChecks.all(projectId, limit);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
