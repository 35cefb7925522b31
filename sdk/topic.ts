// Standard MQTT 3.1.1 topic-filter matching (section 4.7). NanoMQ 0.8 also lets a trailing
// `+` match a shorter topic and lets first-level wildcards match `$SYS/...` (its quirks Q9,
// Q10); we follow the specification.

/** Splits a filter once, so that matching many topics against it allocates nothing more. */
export function compileTopicFilter (filter: string): (topic: string) => boolean {
  const levels = filter.split('/')
  const hashAt = levels.indexOf('#')
  const exact = !filter.includes('+') && hashAt === -1
  const wildFirst = levels[0] === '+' || levels[0] === '#'
  return (topic: string) => {
    if (exact) return topic === filter
    // [MQTT-4.7.2-1] wildcards at the first level never match topics starting with '$'
    if (wildFirst && topic.startsWith('$')) return false
    const parts = topic.split('/')
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i]
      // [MQTT-4.7.1-2] '#' also matches the parent level: 'a/#' matches 'a'
      if (level === '#') return true
      if (i >= parts.length) return false
      if (level !== '+' && level !== parts[i]) return false
    }
    return parts.length === levels.length
  }
}

export function topicMatches (filter: string, topic: string): boolean {
  return compileTopicFilter(filter)(topic)
}

/** Whether `filter` is a valid MQTT topic filter: '#' only last and alone, '+' alone in its level. */
export function isValidTopicFilter (filter: string): boolean {
  if (filter.length === 0) return false
  const levels = filter.split('/')
  return levels.every((level, i) =>
    (level === '#' && i === levels.length - 1) ||
    level === '+' ||
    (!level.includes('#') && !level.includes('+')))
}
