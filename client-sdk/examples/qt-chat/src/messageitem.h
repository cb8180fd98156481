// How a message looks in the chat view: one QListWidgetItem per message, with its JSON and
// its sending state kept in item data roles.
#pragma once

#include <QHash>
#include <QJsonObject>
#include <QString>

class QListWidgetItem;

namespace item {

/// Item data roles.
enum Role {
    Message = 0x0100 + 1, // QJsonObject: the message (as pushed, or as sent so far)
    Seq,                  // qulonglong: its seq in the conversation (0 while unsent)
    ClientMsgId,          // QString
    State,                // QString: "sending", "sent", "failed" or "" (someone else's)
};

/// Builds an item for `message`; `mine` aligns it right; `state` as the State role.
QListWidgetItem *make(const QJsonObject &message, bool mine, const QString &state,
                      const QHash<QString, QString> &names);

/// Sets the sending state (and, once sent, the seq from the ack) and redraws the text.
void setState(QListWidgetItem *it, const QString &state, const QHash<QString, QString> &names);

} // namespace item
