"""The topic corpus and questions the RAG tests share."""

import json
import socket
import urllib.error
import urllib.request

from llmkit.rag import Document

TOPICS = {
    "bees.md": "# Honeybees\n\nA forager honeybee that finds a rich patch of flowers returns to the hive and performs a waggle dance. "
    "The angle of the dance relative to vertical encodes the direction of the food relative to the sun, and the length "
    "of the waggle run encodes the distance. Other workers follow the dancer and then fly out to the patch.",
    "volcanoes.md": "# Volcanoes\n\nMolten rock stored beneath the surface is called magma. Once it erupts through a vent and "
    "flows over the ground it is called lava. Lava that cools quickly forms fine-grained rock such as basalt.",
    "tides.md": "# Tides\n\nOcean tides come mostly from the Moon's gravity, which pulls the water nearest to it a little "
    "more strongly than the Earth's centre. Two bulges of water form, so most coasts see two high waters and two low "
    "waters roughly every 24 hours and 50 minutes.",
    "photosynthesis.md": "# Photosynthesis\n\nGreen plants capture light with chlorophyll in their chloroplasts. They use "
    "that energy to combine carbon dioxide from the air with water, producing glucose for growth and releasing oxygen.",
    "sourdough.md": "# Sourdough\n\nA sourdough starter is a culture of wild yeasts and lactic acid bacteria kept alive with "
    "flour and water. The wild yeasts release carbon dioxide that leavens the dough, while the bacteria give the bread "
    "its sour taste, so no packet of baker's yeast is needed.",
    "rebase.md": "# Rebasing\n\n`git rebase main` takes the commits of the current branch and re-applies them one by one "
    "on top of the tip of main, rewriting their hashes. It gives a linear history; never rebase commits others have pulled.",
    "tcp.md": "# TCP\n\nBefore any payload travels, a TCP client and server exchange three segments: SYN, SYN-ACK and ACK. "
    "This three-way handshake agrees on initial sequence numbers so that both sides can detect lost or reordered data.",
    "castling.md": "# Castling\n\nCastling is the only chess move in which two pieces move at once: the king steps two "
    "squares towards a rook and the rook jumps to the square the king crossed. Neither piece may have moved before.",
    "vaccines.md": "# Vaccination\n\nA vaccine shows the immune system a harmless piece or weakened form of a pathogen. "
    "The body makes antibodies and memory cells, so a later infection by the real pathogen is fought off quickly.",
    "aqueducts.md": "# Aqueducts\n\nAncient Roman engineers carried water to their cities in aqueducts: channels that "
    "descended at a steady gentle slope over many kilometres, crossing valleys on stone arches and ending in fountains and baths.",
}

QUESTIONS = [
    ("How do bees tell each other where the flowers are?", "bees.md"),
    ("What is molten rock called after it comes out of the ground?", "volcanoes.md"),
    ("Why does the sea rise and fall twice a day?", "tides.md"),
    ("How do plants turn sunlight into food?", "photosynthesis.md"),
    ("What makes bread rise when you bake without commercial yeast?", "sourdough.md"),
    ("How can I replay my branch's commits on top of another branch?", "rebase.md"),
    ("How is a network connection set up before data is sent?", "tcp.md"),
    ("Which move lets the king and a rook move together?", "castling.md"),
    ("How does an injection train the body to fight infections?", "vaccines.md"),
    ("How did the ancient Romans bring water into town?", "aqueducts.md"),
]


def topic_documents() -> list[Document]:
    return [
        Document(id=name, text=text, metadata={"source": name, "title": name[:-3]})
        for name, text in TOPICS.items()
    ]


def post(url: str, body: bytes) -> tuple[int, dict]:
    """POST a JSON body; (status, JSON reply), error statuses included."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def raw_reply(url: str, request: bytes) -> bytes:
    """Send a hand-written HTTP request; the whole reply. A server that waits instead fails the test."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(request)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return reply


def raw_request(url: str, request: bytes) -> tuple[int, dict]:
    """Send a hand-written HTTP request; (status, JSON body)."""
    head, _, body = raw_reply(url, request).partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)
