// Applying `message.reacted` changes to a message, as the server applies the reactions.

import assert from "node:assert/strict";
import { test } from "node:test";

import { applyReaction } from "@confab/client";
import type { Message, ReactionChange } from "@confab/types";

const message: Message = {
  id: 7,
  room: "lobby",
  author: "ann",
  text: "hi",
  sent_at: "2026-01-01T00:00:00.000Z",
  edited_at: null,
  deleted: false,
  reactions: {},
  mentions: [],
  mention_all: null,
};

const change = (user: string, emoji: string, added: boolean, count = 0): ReactionChange => ({ id: 7, room: "lobby", emoji, user, added, count });

test("additions keep reaction order and a repeat changes nothing", () => {
  let held = applyReaction(message, change("bob", "👍", true, 1));
  held = applyReaction(held, change("cy", "👍", true, 2));
  held = applyReaction(held, change("bob", "👍", true, 2));
  assert.deepEqual(held.reactions, { "👍": ["bob", "cy"] });
  assert.deepEqual(message.reactions, {}, "the message passed in is left as it was");
});

test("removing the last user removes the emoji, and other messages' changes are ignored", () => {
  let held = applyReaction(message, change("bob", "🎉", true, 1));
  held = applyReaction(held, change("bob", "🎉", false));
  assert.deepEqual(held.reactions, {});
  assert.equal(applyReaction(held, { ...change("bob", "👍", true), id: 8 }), held);
});
