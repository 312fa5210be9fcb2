// Whether a message mentions a user, from what the server recognised.

import assert from "node:assert/strict";
import { test } from "node:test";

import { mentionsUser } from "@confab/client";
import type { Message } from "@confab/types";

const message: Message = {
  id: 7,
  room: "lobby",
  author: "ann",
  text: "hi @Bob",
  sent_at: "2026-01-01T00:00:00.000Z",
  edited_at: null,
  deleted: false,
  reactions: {},
  mentions: ["Bob"],
  mention_all: null,
};

test("a named user is mentioned whatever the case, others are not", () => {
  assert.equal(mentionsUser(message, "bob"), true);
  assert.equal(mentionsUser(message, "cy"), false);
});

test("@room reaches everyone but the author", () => {
  const everyone: Message = { ...message, mentions: [], mention_all: "room" };
  assert.equal(mentionsUser(everyone, "cy"), true);
  assert.equal(mentionsUser(everyone, "ANN"), false, "never by one's own message");
});
