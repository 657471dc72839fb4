// influxd's HTTP query API, for what influxd restore cannot do: drop a database and look inside one.
// Debian's influxdb package ships no `influx` CLI, so the agent speaks HTTP itself.
import { BackupFailedError, errorMessage } from '../../errors.js';

interface QueryResponse {
  readonly results?: readonly {
    readonly error?: string;
    readonly series?: readonly { readonly name: string; readonly values?: readonly (readonly unknown[])[] }[];
  }[];
  readonly error?: string;
}

export class InfluxHttp {
  constructor(readonly baseUrl: string) {}

  /** Runs one InfluxQL statement; DDL goes by POST (GET is deprecated for it). */
  async query(statement: string, database?: string): Promise<QueryResponse> {
    const body = new URLSearchParams({ q: statement, ...(database ? { db: database } : {}) });
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}/query`, { method: 'POST', body, signal: AbortSignal.timeout(60_000) });
    } catch (error) {
      throw new BackupFailedError(
        `influxdb HTTP API at ${this.baseUrl} is not reachable: ${errorMessage(error)}`,
        'check influxdb.http_url and that influxd is running',
      );
    }
    const parsed = (await response.json().catch(() => ({}))) as QueryResponse;
    const error = parsed.error ?? parsed.results?.find((result) => result.error !== undefined)?.error;
    if (!response.ok || error !== undefined) {
      throw new BackupFailedError(`influxdb refused "${statement}": ${error ?? `HTTP ${response.status}`}`);
    }
    return parsed;
  }

  async databases(): Promise<string[]> {
    return firstColumn(await this.query('SHOW DATABASES'));
  }

  async measurements(database: string): Promise<string[]> {
    return firstColumn(await this.query('SHOW MEASUREMENTS', database));
  }

  /** Points per measurement, counted over every field (count(*) per field, the largest wins). */
  async pointCount(database: string, measurement: string): Promise<number> {
    const response = await this.query(`SELECT count(*) FROM "${measurement.replaceAll('"', '\\"')}"`, database);
    const row = response.results?.[0]?.series?.[0]?.values?.[0] ?? [];
    return Math.max(0, ...row.slice(1).map((value) => (typeof value === 'number' ? value : 0)));
  }

  async drop(database: string): Promise<void> {
    await this.query(`DROP DATABASE "${database}"`);
  }
}

function firstColumn(response: QueryResponse): string[] {
  return (response.results?.[0]?.series?.[0]?.values ?? []).map((row) => String(row[0]));
}
