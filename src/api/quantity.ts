/**
 * Byte quantities in the Kubernetes binary-suffix form that hugepage fields use ("2Mi", "1Gi",
 * "512Mi"). Decimal suffixes are rejected by the CRD pattern: hugepage sizes are powers of two
 * and a decimal "2G" is almost always a typo for "2Gi".
 */
const SUFFIX_BYTES: Record<string, bigint> = {
  '': 1n,
  Ki: 1n << 10n,
  Mi: 1n << 20n,
  Gi: 1n << 30n,
  Ti: 1n << 40n,
};

/** Pattern accepted for byte quantities, shared by the CRD schema and the parser. */
export const BYTE_QUANTITY_PATTERN = '^[1-9][0-9]*(Ki|Mi|Gi|Ti)?$';
const BYTE_QUANTITY = new RegExp(BYTE_QUANTITY_PATTERN);

/** Parses "2Gi" into bytes; throws a RangeError naming the accepted form otherwise. */
export function parseByteQuantity(value: string): number {
  if (!BYTE_QUANTITY.test(value)) {
    throw new RangeError(`"${value}" is not a byte quantity such as 512Mi or 2Gi`);
  }
  const match = /^([0-9]+)([A-Za-z]*)$/.exec(value)!;
  const bytes = BigInt(match[1]!) * SUFFIX_BYTES[match[2]!]!;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`"${value}" is too large`);
  return Number(bytes);
}

/** Formats bytes with the largest binary suffix that divides them exactly: 2147483648 -> "2Gi". */
export function formatByteQuantity(bytes: number): string {
  for (const suffix of ['Ti', 'Gi', 'Mi', 'Ki']) {
    const unit = Number(SUFFIX_BYTES[suffix]!);
    if (bytes >= unit && bytes % unit === 0) return `${bytes / unit}${suffix}`;
  }
  return String(bytes);
}
