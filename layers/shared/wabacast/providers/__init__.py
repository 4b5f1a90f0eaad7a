"""WhatsApp providers behind one interface: Twilio, the Meta Cloud API, and the sandbox (Meta API, local URL)."""
