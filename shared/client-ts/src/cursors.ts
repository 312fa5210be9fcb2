// What the client has delivered, so that catching up after a reconnect misses nothing and
// doubles nothing. Per protocol.md ("Delivery"): message ids increase and reach a connection
// in id order per room, and `sync` returns everything newer than the ids it is given. So one
// number per room (the newest id delivered) and one for direct messages are enough: an item
// is new exactly when its id is larger.

import type { DirectMessage, Message, SyncParams } from "@confab/types";

export class Cursors {
  /** Room → the newest message id delivered (or the baseline fixed at the first join). */
  private readonly lastSeen = new Map<string, number>();
  /** Rooms to re-join after a reconnect, in join order. */
  readonly rooms = new Set<string>();
  /** The newest direct message id delivered; `undefined` until the baseline is known. */
  dmAfter: number | undefined;

  constructor(dmAfter: number | undefined) {
    this.dmAfter = dmAfter;
  }

  /** Whether `message` is new to this client; if so it counts as delivered. */
  admitMessage(message: Message): boolean {
    const last = this.lastSeen.get(message.room) ?? 0;
    if (message.id <= last) return false;
    this.lastSeen.set(message.room, message.id);
    return true;
  }

  /** Whether `dm` is new to this client; if so it counts as delivered. */
  admitDm(dm: DirectMessage): boolean {
    if (this.dmAfter !== undefined && dm.id <= this.dmAfter) return false;
    this.dmAfter = dm.id;
    return true;
  }

  /** Moves the direct-message cursor forward to `id` (never back). */
  raiseDm(id: number): void {
    this.dmAfter = Math.max(this.dmAfter ?? 0, id);
  }

  lastSeenIn(room: string): number | undefined {
    return this.lastSeen.get(room);
  }

  hasBaseline(room: string): boolean {
    return this.lastSeen.has(room);
  }

  /** The first join fixes where catching up starts; later joins (re-joins) keep the cursor. */
  joined(room: string, newest: number): void {
    this.rooms.add(room);
    if (!this.lastSeen.has(room)) this.lastSeen.set(room, newest);
  }

  left(room: string): void {
    this.rooms.delete(room);
    this.lastSeen.delete(room);
  }

  /** The params of the next `sync` call. */
  syncParams(authenticated: boolean): SyncParams {
    const rooms: Record<string, number> = {};
    for (const room of this.rooms) rooms[room] = this.lastSeen.get(room) ?? 0;
    return authenticated ? { rooms, dm_after: this.dmAfter ?? 0 } : { rooms };
  }
}
