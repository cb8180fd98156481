#include "messageitem.h"

#include "util.h"

#include <QColor>
#include <QDateTime>
#include <QListWidgetItem>

namespace item {

namespace {

QString stateMark(const QString &state) {
    if (state == QLatin1String("sending"))
        return QStringLiteral("  ⏳ sending");
    if (state == QLatin1String("sent"))
        return QStringLiteral("  ✓ sent");
    if (state == QLatin1String("failed"))
        return QStringLiteral("  ✗ failed (select, then Retry)");
    return {};
}

void render(QListWidgetItem *it, const QHash<QString, QString> &names) {
    const QJsonObject m = it->data(Message).toJsonObject();
    const QString from = m.value("from_user").toString();
    const QString who = names.value(from, QStringLiteral("#") + from);
    const qint64 at = qint64(m.value("sent_at").toDouble());
    const QString time =
        at > 0 ? QDateTime::fromMSecsSinceEpoch(at).toString(QStringLiteral("HH:mm")) : QString();
    QString text = QStringLiteral("%1  %2\n%3").arg(who, time, util::messageSummary(m));
    text += stateMark(it->data(State).toString());
    it->setText(text);
    if (m.contains("file"))
        it->setToolTip(QStringLiteral("double-click to download"));
}

} // namespace

QListWidgetItem *make(const QJsonObject &message, bool mine, const QString &state,
                      const QHash<QString, QString> &names) {
    auto *it = new QListWidgetItem;
    it->setData(Message, message);
    it->setData(Seq, message.value("seq").toString().toULongLong());
    it->setData(ClientMsgId, message.value("client_msg_id").toString());
    it->setData(State, state);
    it->setTextAlignment(mine ? Qt::AlignRight : Qt::AlignLeft);
    it->setBackground(mine ? QColor(0xe3, 0xf4, 0xd7) : QColor(0xf2, 0xf2, 0xf2));
    render(it, names);
    return it;
}

void setState(QListWidgetItem *it, const QString &state, const QHash<QString, QString> &names) {
    it->setData(State, state);
    it->setData(Seq, it->data(Message).toJsonObject().value("seq").toString().toULongLong());
    render(it, names);
}

} // namespace item
