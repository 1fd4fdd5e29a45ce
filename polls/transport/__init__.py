"""The lines phones and stage screens arrive on, side by side over ``polls.session``: the
WebSocket (``websocket``) and, where venue networks break WebSockets, the server-sent-events
stream with its POSTs (``http_stream``). ``responses`` holds what every bare-ASGI HTTP answer
carries (the join API's too)."""
