// The server reads `@name`, `@room` and `@here` in a room message and says whom it mentions
// (`mentions`, `mention_all`); a `mention` notification reaches the mentioned on every
// connection. This answers the question a program asks of any message it holds.

import type { Message } from "@confab/types";

/** Whether `message` mentions `username`: named in `mentions` (regardless of case), or
 * reached by `@room` / `@here`; never by one's own message. */
export function mentionsUser(message: Message, username: string): boolean {
  const me = username.toLowerCase();
  if (message.author.toLowerCase() === me) return false;
  return message.mention_all !== null || message.mentions.some((name) => name.toLowerCase() === me);
}
