/** At most `limit` items joined by `separator`, then how many more: condition messages stay short on large clusters. */
export function summarizeList(items: readonly string[], separator = ', ', limit = 5): string {
  return items.length > limit ? `${items.slice(0, limit).join(separator)} and ${items.length - limit} more` : items.join(separator);
}
