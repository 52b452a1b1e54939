// delivery/outcome.hpp - classify what happened to each recipient of a delivery attempt
// (Postfix smtp_trouble.c in spirit): sent / transient (defer) / permanent (bounce), with
// the enhanced status code and the text the log line and the DSN show. Pure functions.
#pragma once
#include <cstddef>
#include <string>

#include "delivery/maildir.hpp"
#include "smtp/client_session.hpp"

namespace postern::delivery {

// The reply's enhanced code, or the class default ("2.0.0", "4.0.0", "5.0.0").
std::string enhanced_or_default(const smtp::reply& r);
// "550 5.1.1 <x@y>: unknown user" (lines joined with "; ").
std::string reply_text(const smtp::reply& r);
outcome from_reply(const smtp::reply& r);

// RFC 5321 4.5.3.1.10: RFC 821 listed 552 for "too many recipients"; a 552 to RCPT that says so
// (enhanced status X.5.3, RFC 3463, or without one "too many recipients" in its text) is the
// 452 it stands for: temporary, sent again (outbound/attempt.cpp). Any other 5xx to RCPT (a
// "552 5.2.2 mailbox full" too) bounces the recipient (SPEC §3.2).
bool is_recipient_limit_552(const smtp::reply& r);

// Outcome for recipient `i` of a finished transaction (a 552 for the recipient limit: 4.5.3,
// temporary).
outcome classify_recipient(const smtp::transaction_result& t, std::size_t i);

// Outcome for every recipient when the connection failed before the transaction ended.
// `relay` is "host[ip]:port" for the text.
outcome classify_failure(const smtp::client_failure& f, const std::string& relay);

// What one host's transaction left for recipient `i`, and whether the next address or host
// (backup MX, later relay_to host) may still take it in the same attempt. `failure`: how the
// connection failed during the transaction, or null when the transaction ended.
struct recipient_verdict {
    outcome out;
    bool next_host = false;
};
recipient_verdict classify_transaction(const smtp::transaction_result& t, std::size_t i,
                                       const smtp::client_failure* failure, const std::string& relay);

// Several hosts were tried for a recipient and none took the mail: whether the reason kept from
// an earlier host stays when a later host fails with `later`. SPEC §1.2: a recipient a mandatory
// host refused for TLS reasons (4.7.x: not offered, handshake, verification) is deferred, and at
// queue.max_age bounced, with that reason, not with a later host's failure to be reached or
// found (4.4.x: connection refused or lost, timeout, no address). Likewise a host's own
// temporary reply ("452 4.2.2 mailbox full") over a later 4.4.x failure that is no reply (a
// backup MX that cannot be reached says nothing about the recipient). Anything else replaces it.
bool keeps_reason_over(const outcome& kept, const outcome& later);

}  // namespace postern::delivery
