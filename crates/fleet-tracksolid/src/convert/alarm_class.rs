//! The vendor's alarm codes grouped into fleetd's stable alarm classes.

use fleet_core::AlarmClass;

/// The class of a vendor alarm code: the numeric codes devices report and the text codes the
/// platform raises (the OpenAPI appendix "Device alarm type"), matched case-insensitively.
///
/// Choices where a code could fit two classes:
/// - cancellations and "… ended" notices (58, 100, 101, 266, 268) are `Other`: they end an
///   alarm rather than raise one, and counting them as safety or security would double count;
/// - door, window and trunk open/close, ACC, engine, inputs, arming and transport-mode changes
///   are `Device` (a state changed); only unauthorised opening (39) and the armed burglar alert
///   (`burglarStatus_2`) are `Security`;
/// - fatigue, distraction, phone use, smoking and overtime driving are `Safety`, with SOS,
///   falls, collisions and rollover; harsh manoeuvres, lane changes and overspeed (also inside a
///   fence) are `Driving`;
/// - fence entry and exit of every kind, dwell-time fences and route deviation are `Geofence`;
/// - `displacementAlarm` is `Security` like device code 9 (its name in the appendix, "Night
///   Driving Alert", is marked as a documentation error);
/// - temperature, humidity, fuel, ADC, RFID, Bluetooth, exercise, parking/idling, maintenance,
///   vehicle faults and unknown codes are `Other`.
///
/// `1001`/`1002` are the legacy ACC off/on codes of the `alarm.list` sample.
pub fn alarm_class(code: &str) -> AlarmClass {
    let code = code.trim();
    match code.parse::<u32>() {
        Ok(n) => device_code_class(n),
        Err(_) => platform_code_class(&code.to_ascii_lowercase()),
    }
}

fn device_code_class(code: u32) -> AlarmClass {
    match code {
        1 | 35 | 44 | 45 | 55 | 71 | 79 | 140 | 143 | 147 | 148 | 151 | 154 | 160 | 163 | 170
        | 199 | 204 | 206 | 207 | 208 => AlarmClass::Safety,
        3 | 9 | 19 | 24 | 39 | 50 | 83 | 128 | 171 | 191 | 263 | 267 => AlarmClass::Security,
        2 | 14 | 15 | 17 | 18 | 21 | 25 | 36 | 40 | 86 | 87 | 89 | 90 | 136 | 169 => {
            AlarmClass::Power
        }
        6 | 41 | 42 | 43 | 48 | 76 | 77 | 78 | 135 | 144 | 145 | 146 | 202 | 205 => {
            AlarmClass::Driving
        }
        4 | 5 | 256..=259 => AlarmClass::Geofence,
        10
        | 11
        | 12
        | 13
        | 16
        | 20
        | 28
        | 29
        | 80
        | 81
        | 114
        | 138
        | 139
        | 141
        | 149
        | 150
        | 197
        | 198
        | 224
        | 230..=233
        | 254
        | 1001
        | 1002 => AlarmClass::Device,
        _ => AlarmClass::Other,
    }
}

/// `code` is already lowercase.
fn platform_code_class(code: &str) -> AlarmClass {
    match code {
        "dmsalert" | "ubicoll" | "ubiroll" | "ubisatt" => AlarmClass::Safety,
        "burglarstatus_2" | "displacementalarm" => AlarmClass::Security,
        "overspeed"
        | "fenceoverspeed"
        | "drivingbehavioralert"
        | "drivingbehavioralertdvr"
        | "ubiacce"
        | "ubidece"
        | "ubilane"
        | "ubistab"
        | "ubiturn" => AlarmClass::Driving,
        "in"
        | "out"
        | "geozone"
        | "sensitiveareasfence"
        | "staytimein"
        | "staytimeout"
        | "laneshift" => AlarmClass::Geofence,
        "acc_on" | "acc_off" | "offline" | "burglarstatus_0" | "burglarstatus_1" => {
            AlarmClass::Device
        }
        // door, window and trunk states: statusLeftFrontDoors_0, statusTrunk_1, …
        c if c.starts_with("status") && (c.ends_with("_0") || c.ends_with("_1")) => {
            AlarmClass::Device
        }
        _ => AlarmClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn representative_codes_of_every_class_map_as_documented() {
        let cases: &[(&str, AlarmClass)] = &[
            ("1", AlarmClass::Safety),
            ("44", AlarmClass::Safety),
            ("71", AlarmClass::Safety),
            ("DMSAlert", AlarmClass::Safety),
            ("ubiRoll", AlarmClass::Safety),
            ("3", AlarmClass::Security),
            ("39", AlarmClass::Security),
            ("267", AlarmClass::Security),
            ("burglarStatus_2", AlarmClass::Security),
            ("2", AlarmClass::Power),
            ("90", AlarmClass::Power),
            ("6", AlarmClass::Driving),
            ("41", AlarmClass::Driving),
            ("48", AlarmClass::Driving),
            ("overSpeed", AlarmClass::Driving),
            ("ubiTurn", AlarmClass::Driving),
            ("4", AlarmClass::Geofence),
            ("258", AlarmClass::Geofence),
            ("in", AlarmClass::Geofence),
            ("out", AlarmClass::Geofence),
            ("stayTimeOut", AlarmClass::Geofence),
            ("12", AlarmClass::Device),
            ("16", AlarmClass::Device),
            ("ACC_ON", AlarmClass::Device),
            ("1002", AlarmClass::Device),
            ("offline", AlarmClass::Device),
            ("statusTrunk_1", AlarmClass::Device),
            ("82", AlarmClass::Other),
            ("101", AlarmClass::Other),
            ("high_temp_alarm", AlarmClass::Other),
            ("mileageAlarm", AlarmClass::Other),
            ("", AlarmClass::Other),
            ("99999", AlarmClass::Other),
        ];
        for (code, class) in cases {
            assert_eq!(alarm_class(code), *class, "code {code:?}");
        }
    }

    #[test]
    fn codes_match_regardless_of_case_and_surrounding_space() {
        assert_eq!(alarm_class(" acc_on "), AlarmClass::Device);
        assert_eq!(alarm_class("OVERSPEED"), AlarmClass::Driving);
        assert_eq!(alarm_class(" 1 "), AlarmClass::Safety);
    }
}
