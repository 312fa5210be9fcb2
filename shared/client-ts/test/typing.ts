// Compile-time checks of the client's typing; nothing here runs. `tsc --strict` of the tests
// fails when `call` stops inferring results from method names, when `on` stops typing
// handler params by notification, or when misuse starts compiling: each `@ts-expect-error`
// line must stay an error (tsc reports a directive that has nothing to suppress).

import type { DirectMessage, JoinResult, Message, MessageRef, RoomUser, SyncResult } from "@confab/types";
import type { ConfabClient, StateChange } from "@confab/client";

/** True when `A` and `B` are the same type (not merely assignable either way). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;

export async function results(client: ConfabClient): Promise<void> {
  const sent = await client.call("room.send", { room: "lobby", text: "hi" });
  const joined = await client.call("room.join", { room: "lobby", history: 0 });
  const synced = await client.call("sync", { rooms: { lobby: 0 } });
  const dm = await client.call("dm.send", { to: "bob", text: "hi" });
  type Checks = [
    Assert<Equal<typeof sent, Message>>,
    Assert<Equal<typeof joined, JoinResult>>,
    Assert<Equal<typeof synced, SyncResult>>,
    Assert<Equal<typeof dm, DirectMessage>>,
  ];
  void (null as unknown as Checks);
}

export function notifications(client: ConfabClient): void {
  client.on("room.message", (message) => {
    type Check = Assert<Equal<typeof message, Message>>;
    void (null as unknown as Check);
  });
  client.on("message.deleted", (ref) => {
    type Check = Assert<Equal<typeof ref, MessageRef>>;
    void (null as unknown as Check);
  });
  client.on("room.typing", (who) => {
    type Check = Assert<Equal<typeof who, RoomUser>>;
    void (null as unknown as Check);
  });
  client.onState((change) => {
    type Check = Assert<Equal<typeof change, StateChange>>;
    void (null as unknown as Check);
  });
}

export async function misuse(client: ConfabClient): Promise<void> {
  // @ts-expect-error a Message has no `foo`
  void (await client.call("room.send", { room: "lobby", text: "hi" })).foo;
  // @ts-expect-error room.send needs `text`
  await client.call("room.send", { room: "lobby" });
  // @ts-expect-error `text` is a string
  await client.call("room.send", { room: "lobby", text: 5 });
  // @ts-expect-error no such method
  await client.call("room.post", { room: "lobby", text: "hi" });
  // @ts-expect-error room.send answers a Message, not a DirectMessage
  const wrong: DirectMessage = await client.call("room.send", { room: "lobby", text: "hi" });
  void wrong;
  // @ts-expect-error room.typing carries {room, username}, no text
  client.on("room.typing", (params) => void params.text);
  // @ts-expect-error no such notification
  client.on("room.posted", () => undefined);
  // @ts-expect-error a token and credentials at once
  void ({ url: "", token: "t", credentials: { username: "u", password: "p" } } satisfies Parameters<typeof ConfabClient.connect>[0]);
}
