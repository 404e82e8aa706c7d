"""The embedded default: a local SQS endpoint and a simulated Canvas, for `sis-consumer demo` and tests.

Entry points: `stack.Sandbox` (everything wired), `canvas.SimulatedCanvas` (Canvas alone, with an
injected `publish`), `sqs_io.SqsPublisher` / `SqsInbox`, `knobs.Knobs` / `Plan`, `fixtures` (pytest).
Pure rules live in `accounts`, `knobs`, `params`, `uploads`, `model`, `render`, `live_events`,
`throttle`; asyncio in `lifecycle` and `delivery`; aiohttp in `middleware` and `api`.
"""
