/**
 * Text a user supplied (a path from a CSV row, a file name, a flag's value) on its way to a
 * terminal. A name may hold control characters (`3/<ESC>[31mRED<BEL>.png` colours the screen
 * and rings the bell; C1's CSI clears it) or be megabytes long, so what svhn prints for people
 * (errors, log messages, progress labels, summaries, predict's rows on a TTY) goes through
 * printable(): control characters become visible escapes, and a very long name is cut in the
 * middle with the count of what was left out. Machine outputs (CSV/JSONL to a pipe or file,
 * --json) keep the exact text under their own quoting instead.
 */

/**
 * Characters a word (a run without spaces: a path, a name) keeps; beyond, its middle is
 * elided. Longer than any usual path, so the message around a 2 MB name stays readable.
 */
export const MAX_WORD_CHARS = 256;
/** Characters a printed line keeps (names with spaces in them, many long words): about 25 rows of 80 columns. */
export const MAX_LINE_CHARS = 2000;

/** C0 controls, DEL and C1 controls: what a terminal may act on rather than show. */
const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Each control character as a visible escape: \n, \r, \t, else \xHH (\x1b for ESC, \x9b for CSI). */
export function escapeControls(text: string): string {
  return text.replace(CONTROL, (c) => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * Text of at most `max` characters: a longer one keeps its start and end (two thirds, one
 * third) around "…[N characters elided]…", N counting the characters left out.
 */
export function elideMiddle(text: string, max = MAX_LINE_CHARS): string {
  if (text.length <= max) return text;
  let head = Math.ceil((max * 2) / 3);
  let tail = max - head;
  // Never split a surrogate pair: the half would print as a replacement character.
  if (isHighSurrogate(text.charCodeAt(head - 1))) head--;
  if (isLowSurrogate(text.charCodeAt(text.length - tail))) tail--;
  const elided = text.length - head - tail;
  return `${text.slice(0, head)}…[${elided.toLocaleString('en-US')} characters elided]…${text.slice(text.length - tail)}`;
}

const isHighSurrogate = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLowSurrogate = (c: number) => c >= 0xdc00 && c <= 0xdfff;

const LONG_WORD = new RegExp(`\\S{${MAX_WORD_CHARS + 1},}`, 'g');

/** Each word longer than MAX_WORD_CHARS, and then the whole beyond MAX_LINE_CHARS, cut in the middle (elideMiddle). */
export function elideLong(text: string): string {
  return elideMiddle(text.replace(LONG_WORD, (word) => elideMiddle(word, MAX_WORD_CHARS)));
}

/** One line for a terminal: long names cut (elideLong), then every control character escaped (newlines included). */
export function printable(text: string): string {
  return escapeControls(elideLong(text));
}

/** Several lines (a summary, a table): each line made printable, the newlines between them kept. */
export function printableLines(text: string): string {
  return text.split('\n').map(printable).join('\n');
}

/** Text safe inside HTML (and XML) markup and quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
