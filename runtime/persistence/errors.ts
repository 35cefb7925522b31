// Start-up errors of the durable store. Each names the file, says what is wrong and what
// to do; none of them lets the broker start with an empty store instead.
import { TapmqError } from '../../sdk/errors.ts'

export const ERR_PERSISTENCE_LOCKED = (file: string, cause?: unknown) => new TapmqError('TAPMQ_ERR_PERSISTENCE_LOCKED',
  `the message store ${file} is locked by another process (another tapmq on the same data_dir?); stop it or give this broker its own data_dir`,
  { cause })

export const ERR_PERSISTENCE_CORRUPT = (file: string, detail: string, cause?: unknown) => new TapmqError('TAPMQ_ERR_PERSISTENCE_CORRUPT',
  `the message store ${file} is damaged (${detail}); tapmq will not start with an empty store in its place: restore a backup, or move the file away to start afresh`,
  { cause })

export const ERR_PERSISTENCE_OPEN = (file: string, reason: string, cause?: unknown) => new TapmqError('TAPMQ_ERR_PERSISTENCE_OPEN',
  `cannot open the message store ${file}: ${reason}`, { cause })
