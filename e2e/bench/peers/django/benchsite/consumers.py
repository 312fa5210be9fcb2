"""The chat consumer pattern from the Channels tutorial, with acknowledgements.

Client → server (JSON text frames):
  {"type": "join", "id": 1, "room": "r0"}            → {"type": "ack", "id": 1}
  {"type": "send", "id": 2, "room": "r0", "text": …}  → group_send, then {"type": "ack", "id": 2}
Server → client, to every member of the room (the sender included):
  {"type": "message", "room": "r0", "text": …}
Nothing is persisted.
"""

import json

from channels.generic.websocket import AsyncWebsocketConsumer


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.rooms = set()
        await self.accept()

    async def disconnect(self, code):
        for room in self.rooms:
            await self.channel_layer.group_discard(room, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        msg = json.loads(text_data)
        kind = msg.get("type")
        if kind == "join":
            room = msg["room"]
            await self.channel_layer.group_add(room, self.channel_name)
            self.rooms.add(room)
        elif kind == "send":
            await self.channel_layer.group_send(
                msg["room"], {"type": "chat.message", "room": msg["room"], "text": msg["text"]}
            )
        else:
            return
        await self.send(text_data=json.dumps({"type": "ack", "id": msg.get("id")}))

    async def chat_message(self, event):
        await self.send(text_data=json.dumps({"type": "message", "room": event["room"], "text": event["text"]}))
