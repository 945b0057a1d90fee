"""Face side: landmarks (MediaPipe models under ai-edge-litert), action-unit expression space,
mesh-warp renderer, and the independent FER judge."""
