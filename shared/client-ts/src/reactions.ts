// `message.reacted` carries one change, never the message's whole list of reactions: applying
// it to the message a program holds gives what the server holds.

import type { Message, ReactionChange } from "@confab/types";

/** The message with `change` applied: `change.user` added under `change.emoji` (after those
 * already there), or removed, the emoji going with its last user. A change of another message
 * returns `message` unchanged. */
export function applyReaction(message: Message, change: ReactionChange): Message {
  if (message.id !== change.id) return message;
  const users = message.reactions[change.emoji] ?? [];
  let next: string[];
  if (change.added) {
    next = users.includes(change.user) ? users : [...users, change.user];
  } else {
    next = users.filter((user) => user !== change.user);
  }
  const reactions: Record<string, string[]> = { ...message.reactions, [change.emoji]: next };
  if (next.length === 0) delete reactions[change.emoji];
  return { ...message, reactions };
}
