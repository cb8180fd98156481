// Small helpers shared by the views: reading the SDK's JSON (every id is a decimal string).
#pragma once

#include <QJsonObject>
#include <QString>

namespace util {

/// A user's display name: nickname, else username, else "#id".
inline QString userName(const QJsonObject &user) {
    const QString nick = user.value("nickname").toString();
    if (!nick.isEmpty())
        return nick;
    const QString name = user.value("username").toString();
    return name.isEmpty() ? QStringLiteral("#") + user.value("user_id").toString() : name;
}

/// A byte count for people: "512 B", "3.2 KiB", "1.5 MiB".
inline QString bytes(double n) {
    if (n < 1024)
        return QString::number(qint64(n)) + QStringLiteral(" B");
    if (n < 1024 * 1024)
        return QString::number(n / 1024, 'f', 1) + QStringLiteral(" KiB");
    return QString::number(n / (1024 * 1024), 'f', 1) + QStringLiteral(" MiB");
}

/// One line for a message in lists: its text, or what it carries.
inline QString messageSummary(const QJsonObject &m) {
    const QString kind = m.value("kind").toString();
    const QString text = m.value("text").toString();
    if (kind == QLatin1String("recalled"))
        return QStringLiteral("(recalled)");
    if (m.contains("file")) {
        const QJsonObject f = m.value("file").toObject();
        QString s = QStringLiteral("[%1] %2 (%3)")
                        .arg(kind, f.value("name").toString(), bytes(f.value("size").toDouble()));
        if (!text.isEmpty())
            s += QStringLiteral(" ") + text;
        return s;
    }
    if (kind == QLatin1String("red_packet"))
        return QStringLiteral("[red packet] ") + text;
    return text;
}

} // namespace util
