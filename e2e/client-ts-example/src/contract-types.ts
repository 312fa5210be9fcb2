// Compile-time checks of the generated @confab/types package. Nothing here runs: `tsc --strict`
// (e2e/suites/20-client-ts-example.sh) fails when the package stops typing calls and notifications the
// way the protocol says, e.g. when a result degrades to `unknown`, a method loses its entry in
// the method map, or `METHODS` / `NOTIFICATIONS` and the types disagree. Each
// `@ts-expect-error` line must stay an error: if it starts compiling, tsc reports the directive.

import type {
  DirectMessage,
  Job,
  JoinResult,
  Message,
  MessageRef,
  MethodName,
  Notification,
  NotificationMethod,
  PresenceWatchResult,
  ReactionChange,
  RoomMembersPage,
  RoomsPage,
  NotificationParamsOf,
  ParamsOf,
  ResultOf,
  RoomSummary,
  SendParams,
  SyncParams,
  SyncResult,
  UserPresence,
  UsersPage,
} from "@confab/types";
import type { METHODS, NOTIFICATIONS } from "@confab/types";

import type { ConfabClient } from "@confab/client";

/** True when `A` and `B` are the same type (not merely assignable either way). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;

export type ResultTypes = [
  Assert<Equal<ResultOf<"room.send">, Message>>,
  Assert<Equal<ResultOf<"room.join">, JoinResult>>,
  Assert<Equal<ResultOf<"room.history">, Array<Message>>>,
  Assert<Equal<ResultOf<"rooms.list">, RoomsPage>>,
  Assert<Equal<ResultOf<"users.list">, UsersPage>>,
  Assert<Equal<ResultOf<"room.members">, RoomMembersPage>>,
  Assert<Equal<ResultOf<"presence.watch">, PresenceWatchResult>>,
  Assert<Equal<RoomsPage["rooms"], Array<RoomSummary>>>,
  Assert<Equal<UsersPage["users"], Array<UserPresence>>>,
  Assert<Equal<ResultOf<"dm.send">, DirectMessage>>,
  Assert<Equal<ResultOf<"sync">, SyncResult>>,
  Assert<Equal<ResultOf<"job.subscribe">, Job>>,
  Assert<Equal<ParamsOf<"room.send">, SendParams>>,
  Assert<Equal<ParamsOf<"sync">, SyncParams>>,
];

export type NotificationTypes = [
  Assert<Equal<NotificationParamsOf<"room.message">, Message>>,
  Assert<Equal<NotificationParamsOf<"dm.message">, DirectMessage>>,
  Assert<Equal<NotificationParamsOf<"message.deleted">, MessageRef>>,
  Assert<Equal<NotificationParamsOf<"message.reacted">, ReactionChange>>,
  Assert<Equal<NotificationParamsOf<"presence.changed">, UserPresence>>,
  Assert<Equal<NotificationParamsOf<"job.finished">, Job>>,
];

/** The run-time name lists and the type-level method sets are the same sets. */
export type NameLists = [
  Assert<Equal<(typeof METHODS)[number], MethodName>>,
  Assert<Equal<(typeof NOTIFICATIONS)[number], NotificationMethod>>,
];

/** `Notification` is a discriminated union: switching on `method` narrows `params`. */
export function describe(notification: Notification): string {
  switch (notification.method) {
    case "room.message":
      return `${notification.params.author}: ${notification.params.text}`;
    case "dm.message":
      return `${notification.params.from} → ${notification.params.to}`;
    case "message.deleted":
      // @ts-expect-error a MessageRef has no text
      return notification.params.text;
    default:
      return notification.method;
  }
}

/** What a client may and may not write against the typed socket. */
export async function misuse(socket: ConfabClient): Promise<void> {
  const message: Message = await socket.call("room.send", { room: "lobby", text: "hi" });
  // @ts-expect-error a Message has no `foo`
  void message.foo;
  // @ts-expect-error room.send needs `text`
  await socket.call("room.send", { room: "lobby" });
  // @ts-expect-error `text` is a string
  await socket.call("room.send", { room: "lobby", text: 5 });
  // @ts-expect-error no such method
  await socket.call("room.post", { room: "lobby", text: "hi" });
  // @ts-expect-error room.send answers a Message, not a DirectMessage
  const wrong: DirectMessage = await socket.call("room.send", { room: "lobby", text: "hi" });
  void wrong;
  socket.on("room.typing", (params) => void params.username);
  // @ts-expect-error room.typing carries {room, username}, no text
  socket.on("room.typing", (params) => void params.text);
  // @ts-expect-error no such notification
  socket.on("room.posted", () => undefined);
}
