#pragma once
#include <string>

namespace edge::sys {

// Sends one state string ("READY=1", "WATCHDOG=1", ...) to the datagram socket named
// by $NOTIFY_SOCKET, as systemd's sd_notify(3) does. Returns 0 when there is no
// NOTIFY_SOCKET, 1 when sent, and -errno on failure.
int sd_notify(const std::string& state);

}  // namespace edge::sys
