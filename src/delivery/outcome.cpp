// delivery/outcome.cpp - reply -> sent / defer / bounce (RFC 5321 4.2.1, RFC 3463).
#include "delivery/outcome.hpp"

#include <cctype>

#include <fmt/format.h>

namespace postern::delivery {

std::string enhanced_or_default(const smtp::reply& r) {
    if (!r.enhanced.empty()) return r.enhanced;
    if (r.code >= 500) return "5.0.0";
    if (r.code >= 400) return "4.0.0";
    return "2.0.0";
}

std::string reply_text(const smtp::reply& r) {
    std::string text = fmt::format("{}", r.code);
    if (!r.enhanced.empty()) text += " " + r.enhanced;
    for (std::size_t i = 0; i < r.lines.size(); ++i) text += (i == 0 ? " " : "; ") + r.lines[i];
    return text;
}

outcome from_reply(const smtp::reply& r) {
    outcome o;
    // RFC 5321 4.2.1: 2yz done, 4yz transient, 5yz permanent. A 3yz where a final reply was
    // expected is a protocol violation: retry.
    if (r.code >= 200 && r.code < 300) o.result = outcome::kind::sent;
    else if (r.code >= 500) o.result = outcome::kind::permanent;
    else o.result = outcome::kind::transient;
    o.dsn = enhanced_or_default(r);
    if (r.code >= 300 && r.code < 400) o.dsn = "4.5.0";
    o.reason = reply_text(r);
    o.remote_reply = true;
    return o;
}

bool is_recipient_limit_552(const smtp::reply& r) {
    if (r.code != 552) return false;
    if (!r.enhanced.empty()) return r.enhanced.size() > 2 && r.enhanced.substr(1) == ".5.3";
    for (const auto& line : r.lines) {
        std::string lower(line);
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (lower.find("too many recipients") != std::string::npos) return true;
    }
    return false;
}

outcome classify_recipient(const smtp::transaction_result& t, std::size_t i) {
    if (t.local_refusal) {
        // Postern's own refusal before MAIL FROM: its code and status, but said as a sentence,
        // not quoted as a reply that no server sent.
        outcome o = from_reply(*t.local_refusal);
        o.remote_reply = false;
        o.reason.clear();
        for (const auto& line : t.local_refusal->lines) o.reason += (o.reason.empty() ? "" : "; ") + line;
        return o;
    }
    if (t.mail && !t.mail->positive()) return from_reply(*t.mail);
    if (i < t.rcpt.size() && t.rcpt[i] && !t.rcpt[i]->positive()) {
        outcome o = from_reply(*t.rcpt[i]);
        if (is_recipient_limit_552(*t.rcpt[i])) {  // the 452 it stands for: temporary
            o.result = outcome::kind::transient;
            o.dsn = "4.5.3";
        }
        return o;
    }
    if (t.data && t.data->code != 354) {
        outcome o = from_reply(*t.data);
        if (o.result == outcome::kind::sent) {  // 2xx to DATA: no content went out (RFC 5321 4.1.1.4)
            o.result = outcome::kind::transient;
            o.dsn = "4.5.0";
        }
        return o;
    }
    if (t.final) return from_reply(*t.final);
    return {outcome::kind::transient, "4.4.2", "transaction did not complete"};
}

outcome classify_failure(const smtp::client_failure& f, const std::string& relay) {
    using k = smtp::client_failure::kind;
    outcome o;  // Postern's sentence about the connection (remote_reply = false), quoting any reply
    o.result = outcome::kind::transient;
    std::string last = f.last_reply ? reply_text(*f.last_reply) : std::string();
    switch (f.what) {
        case k::greeting_refused:
            // Only a 4xx greeting's own code says why; a 5xx (another MX may work: defer) or a
            // greeting of another class (3xx: not a refusal at all) is 4.4.2, never a 2.x.x/5.x.x
            // status on a deferral.
            o.dsn = f.last_reply && f.last_reply->transient() ? enhanced_or_default(*f.last_reply) : "4.4.2";
            o.reason = fmt::format("{} refused to talk to me: {}", relay, last);
            break;
        case k::helo_refused:
            o.dsn = "4.4.2";
            o.reason = fmt::format("{} refused EHLO and HELO: {}", relay, last);
            break;
        case k::starttls_refused:
            o.dsn = "4.7.5";
            o.reason = fmt::format("STARTTLS refused by {}: {}", relay, last);
            break;
        case k::protocol_error:
            o.dsn = "4.5.0";
            o.reason = fmt::format("protocol error talking to {}: {}", relay, f.detail);
            break;
        case k::connection_lost:
            o.dsn = "4.4.2";
            o.reason = f.during_final_reply
                           ? fmt::format("lost connection with {} after end of data (may be delivered twice)", relay)
                           : fmt::format("lost connection with {}{}", relay, f.detail.empty() ? "" : ": " + f.detail);
            break;
        case k::timeout:
            o.dsn = "4.4.2";
            o.reason = fmt::format("conversation with {} timed out{}", relay,
                                   f.during_final_reply ? " after end of data (may be delivered twice)" : "");
            break;
    }
    return o;
}

recipient_verdict classify_transaction(const smtp::transaction_result& t, std::size_t i,
                                       const smtp::client_failure* failure, const std::string& relay) {
    recipient_verdict v{classify_recipient(t, i)};
    if (t.local_refusal && !relay.empty()) v.out.reason += fmt::format(" ({}; nothing sent)", relay);  // which server
    // A reply that already answered for the recipient (a refusal of MAIL, of its RCPT or of
    // DATA) stands when the connection fails afterwards; otherwise the failure is its outcome.
    const bool answered = v.out.remote_reply || t.local_refusal;
    if (failure && !answered) v.out = classify_failure(*failure, relay);
    // RFC 5321 5.1: a temporary failure at one host leaves the recipient to the next (Postfix
    // smtp_trouble.c keeps a soft-failed recipient for the next server) - unless the content
    // went out and the final reply never came: the message may have been delivered, and
    // another host would deliver it twice. That stays a deferral, like a 2xx or 5xx stays final.
    const bool may_be_delivered = failure && failure->during_final_reply && !answered;
    v.next_host = v.out.result == outcome::kind::transient && !may_be_delivered;
    return v;
}

bool keeps_reason_over(const outcome& kept, const outcome& later) {
    if (!later.dsn.starts_with("4.4.")) return false;
    return kept.dsn.starts_with("4.7.") || (kept.remote_reply && !later.remote_reply);
}

}  // namespace postern::delivery
