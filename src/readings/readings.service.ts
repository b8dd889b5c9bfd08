import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InvalidInputError, MeterNotFoundError } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { MetersRepository } from '../meters/meters.repository';
import {
  CSV_HEADER,
  HISTORY_DEFAULT_LIMIT,
  HistoryQueryDto,
  ReadingsPageDto,
  toCsvLines,
  toHistoryReadingDto,
} from './dto/history.dto';
import { CursorError, decodeCursor, encodeCursor, HistoryOrder } from './history-cursor';
import { parseRangeBound, PeriodError } from './period';
import { HistoryPageRequest, ReadingsRepository } from './readings.repository';

/** Rows per statement of the CSV export: large enough to keep round trips few, small enough to bound memory. */
export const CSV_CHUNK_ROWS = 10_000;

type HistoryRange = Omit<HistoryPageRequest, 'limit'>;

/** Reading history (SPEC 7): pages by keyset cursor, and the CSV export page after page. */
@Injectable()
export class ReadingsService {
  private readonly defaultTimeZone: string;

  constructor(
    private readonly readings: ReadingsRepository,
    private readonly meters: MetersRepository,
    @Inject(ConfigService) config: ConfigService<AppConfig, true>,
  ) {
    this.defaultTimeZone = config.get('stats', { infer: true }).timeZone;
  }

  async page(meterId: string, query: HistoryQueryDto): Promise<ReadingsPageDto> {
    const range = await this.range(meterId, query);
    const limit = query.limit ?? HISTORY_DEFAULT_LIMIT;
    // One row more than the page tells whether there is a next page without a count.
    const rows = await this.readings.historyPage(meterId, { ...range, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      meter_id: meterId,
      order: range.order,
      limit,
      items: page.map(toHistoryReadingDto),
      next_cursor: rows.length > limit && last ? encodeCursor(meterId, { order: range.order, key: last.key }) : null,
    };
  }

  /**
   * The CSV export as text chunks: the header and then CSV_CHUNK_ROWS rows at a time, each chunk read only when the
   * consumer asks for it (backpressure), so memory stays bounded however long the history. The query is validated
   * and the first chunk read before this resolves: a bad request or an unreachable database is still an error
   * answer, not a cut-off download.
   */
  async csv(meterId: string, query: HistoryQueryDto): Promise<AsyncGenerator<string>> {
    const range = await this.range(meterId, query);
    let remaining = query.limit ?? Number.POSITIVE_INFINITY;
    const next = async (after: string | null) => {
      const request: HistoryPageRequest = { ...range, after, limit: Math.min(CSV_CHUNK_ROWS, remaining) };
      const rows = await this.readings.historyPage(meterId, request);
      remaining -= rows.length;
      return { rows, more: rows.length === request.limit && remaining > 0 };
    };
    let chunk = await next(range.after);
    return (async function* () {
      yield `${CSV_HEADER}\n`;
      for (;;) {
        if (chunk.rows.length > 0) yield toCsvLines(meterId, chunk.rows);
        if (!chunk.more) return;
        chunk = await next(chunk.rows[chunk.rows.length - 1].key);
      }
    })();
  }

  private async range(meterId: string, query: HistoryQueryDto): Promise<HistoryRange> {
    const timeZone = query.tz ?? this.defaultTimeZone;
    if (typeof timeZone !== 'string') throw new InvalidInputError('tz must be an IANA time zone name');
    let from: Date | null;
    let to: Date | null;
    try {
      from = parseRangeBound('from', query.from, 'start', timeZone);
      to = parseRangeBound('to', query.to, 'end', timeZone);
    } catch (error) {
      if (error instanceof PeriodError) throw new InvalidInputError(error.message);
      throw error;
    }
    if (from && to && from.getTime() > to.getTime()) {
      throw new InvalidInputError(`from (${from.toISOString()}) is after to (${to.toISOString()})`);
    }
    let order: HistoryOrder = query.order ?? 'asc';
    let after: string | null = null;
    if (query.cursor !== undefined) {
      try {
        const position = decodeCursor(meterId, query.cursor);
        if (query.order !== undefined && query.order !== position.order) {
          throw new CursorError(`cursor continues order=${position.order}, not order=${query.order}`);
        }
        order = position.order;
        after = position.key;
      } catch (error) {
        if (error instanceof CursorError) throw new InvalidInputError(error.message);
        throw error;
      }
    }
    if (!(await this.meters.findById(meterId))) throw new MeterNotFoundError(meterId);
    return { from, to, order, after };
  }
}
